"""Subprocesses of a run (gunicorn, celery), and what /proc says about them.

Each process is started in its own session, so Ctrl-C in the terminal reaches only the runner,
which then stops every process group it started (SIGTERM, then SIGKILL for what is left).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Process:
    """A command in its own process group, its output in `log_dir/<name>.log`."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_running(self) -> None:
        if self.popen.poll() is not None:
            tail = "\n".join(self.output().splitlines()[-30:])
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the main process (a graceful stop, as a supervisor does), then SIGKILL
        to whatever is left of the group."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.wait(timeout=10)
        self._log.close()


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from every thread's children list."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    pids = [pid]
    for child in children(pid):
        pids.extend(tree(child))
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid`, its live descendants and its reaped children.

    Fields 14-17 of /proc/<pid>/stat: utime, stime, cutime, cstime (cutime/cstime cover
    children that exited and were waited for, e.g. recycled pool processes).
    """
    total_ticks = 0
    for index, member in enumerate(tree(pid)):
        with contextlib.suppress(FileNotFoundError):
            fields = _stat_fields(member)
            utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
            total_ticks += utime + stime
            if index == 0:
                total_ticks += cutime + cstime
    return total_ticks / _CLOCK_TICKS


@dataclass(frozen=True)
class Memory:
    rss_mb: float  # resident set: shared pages counted in every process
    pss_mb: float  # proportional set: shared pages divided among the processes sharing them


def memory(pid: int) -> Memory:
    """RSS and PSS of one process, from /proc/<pid>/smaps_rollup."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0])  # kB
    return Memory(rss_mb=values["Rss"] / 1024, pss_mb=values["Pss"] / 1024)


def wait_for_log(process: Process, text: str, timeout: float) -> float:
    """Wait until `text` appears in the process's output; return when that was seen."""
    deadline = time.monotonic() + timeout
    while text not in process.output():
        process.check_running()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name}: no {text!r} in its output after {timeout:.0f}s")
        time.sleep(0.02)
    return time.monotonic()
