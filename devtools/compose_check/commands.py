"""Running the programs the check drives (docker, docker-compose, debootstrap, tar) so that an
interruption always leaves the teardown to run.

Every child starts in a session of its own: the terminal's Ctrl-C reaches this process alone,
which then stops the child itself (SIGTERM to its process group, SIGKILL after a grace period)
and goes on to the teardown. Otherwise Ctrl-C would also hit docker-compose or debootstrap in
the middle of their own work, and debootstrap would leave its chroot's mounts behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL for an interrupted child


@dataclass(frozen=True)
class Result:
    args: list[str]
    returncode: int
    output: str  # stdout and stderr, interleaved


class CommandFailed(Exception):
    def __init__(self, result: Result, log: Path | None) -> None:
        tail = "\n".join(result.output.rstrip().splitlines()[-30:])
        where = f" (full output: {log})" if log else ""
        super().__init__(f"{' '.join(result.args)} exited with {result.returncode}{where}:\n{tail}")
        self.result = result


@contextmanager
def shielded() -> Iterator[None]:
    """SIGINT and SIGTERM ignored inside: for the teardown, which must run to its end."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a child started by `run` and everything it started (its process group)."""
    with shielded():
        for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5.0)):
            with suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue


class Runner:
    """Runs commands, each one's output appended to `log_dir`/`<log>.log`."""

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = dict(env if env is not None else os.environ)

    def run(
        self,
        args: Sequence[str],
        *,
        log: str = "commands",
        check: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Path | None = None,
        quiet: bool = False,
    ) -> Result:
        """Run `args` to its end and return its output; CommandFailed if it fails and `check`.

        Ctrl-C, SIGTERM (turned into KeyboardInterrupt by the check) or `timeout` stop the
        child before the exception goes on. `quiet`: the output goes to the log only if the
        command fails (for the queries repeated while waiting).
        """
        args = [str(arg) for arg in args]
        log_path = self.log_dir / f"{log}.log"
        with open(stdin, "rb") if stdin else open(os.devnull, "rb") as source:
            process = subprocess.Popen(
                args,
                stdin=source,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(env if env is not None else self.env),
                start_new_session=True,
            )
            try:
                raw, _ = process.communicate(timeout=timeout)
            except BaseException as error:
                stop(process)
                with log_path.open("a") as log_file:
                    log_file.write(f"$ {' '.join(args)}\n[stopped: {error!r}]\n\n")
                raise
        result = Result(args, process.returncode, raw.decode(errors="replace"))
        shown = "" if quiet and result.returncode == 0 else result.output
        with log_path.open("a") as log_file:
            log_file.write(f"$ {' '.join(args)}\n{shown}[exit {result.returncode}]\n\n")
        if check and result.returncode != 0:
            raise CommandFailed(result, log_path)
        return result

    def start(self, args: Sequence[str], *, log: str) -> subprocess.Popen[bytes]:
        """A long-running child (dockerd) writing to its log; `stop()` ends it."""
        with (self.log_dir / f"{log}.log").open("ab") as log_file:
            return subprocess.Popen(
                [str(arg) for arg in args],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
