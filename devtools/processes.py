"""Subprocesses of the dev runner, the tests and the benchmarks.

Each runs in a session of its own: Ctrl-C in the terminal reaches only whoever started it, which
then stops the whole process group, whatever the process started included. Its output goes to
`<log_dir>/<name>.log`, or, without a log folder, to our stdout one line at a time behind its
name (the dev runner's console).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from devtools.waiting import wait_until

_console_lock = threading.Lock()


def console(name: str, line: bytes) -> None:
    """Write `line` to our stdout behind `name`, whole, among the lines of other threads."""
    with _console_lock:
        sys.stdout.buffer.write(f"{name:<6} | ".encode() + line.rstrip(b"\r\n") + b"\n")
        sys.stdout.buffer.flush()


class ProcessExited(RuntimeError):
    """A process that should be running has exited."""


class Process:
    """A command in its own session and process group, stopped with everything it started."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> None:
        """`user`: run as that system user, with its group and no other (we must be root)."""
        self.name = name
        self.log_path = None if log_dir is None else log_dir / f"{name}.log"
        self._log = None if self.log_path is None else open(self.log_path, "wb")  # noqa: SIM115 - closed in kill()
        self.popen = subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **({} if user is None else as_user(user)),
        )
        self._pump: threading.Thread | None = None
        if self._log is None:
            assert self.popen.stdout is not None
            self._pump = threading.Thread(target=self._copy, args=(self.popen.stdout,), daemon=True)
            self._pump.start()

    def _copy(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            console(self.name, line)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        """What it wrote so far ('' for a process writing to the console)."""
        return "" if self.log_path is None else self.log_path.read_text(errors="replace")

    def exited(self) -> bool:
        """Whether it has exited, leaving it unreaped: its group id stays ours to signal."""
        if self.popen.returncode is not None:
            return True
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, self.popen.pid, flags) is not None
        except ChildProcessError:
            return True

    def signal(self, sig: int) -> None:
        """Send `sig` to the whole process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0, *, whole_group: bool = True) -> None:
        """SIGTERM, up to `timeout` seconds to exit, then `kill()` whatever is left.

        whole_group=False sends the SIGTERM to the main process only, as a supervisor does
        (gunicorn's master and a Celery worker then stop their children themselves).
        """
        if not self.exited():
            if whole_group:
                self.signal(signal.SIGTERM)
            else:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                wait_until(self.exited, timeout, f"{self.name} to exit")
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group (what the main process left behind too), then reap it."""
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
        if self._pump is not None:
            self._pump.join(timeout=2)
        if self._log is not None:
            self._log.close()


def as_user(name: str) -> dict[str, Any]:
    """Popen's arguments that run a command as the system user `name` (from root)."""
    entry = pwd.getpwnam(name)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def running(process: Process) -> Literal[True]:
    """True while `process` runs (for wait_until); raises ProcessExited once it has exited."""
    if process.exited():
        tail = "\n".join(process.output().splitlines()[-40:])
        raise ProcessExited(f"{process.name} exited with {process.popen.poll()}:\n{tail}")
    return True


def stop_all(processes: Sequence[Process], timeout: float) -> list[Process]:
    """Stop them together (their shutdowns overlap); return those killed after `timeout`."""
    for process in processes:
        process.signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: all(p.exited() for p in processes), timeout, "the processes to exit")
    killed = [process for process in processes if not process.exited()]
    for process in processes:
        process.kill()
    return killed
