"""What the processes of a run cost: CPU time and memory, from /proc."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from devtools.proc import tree

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


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
    peak_rss_mb: float  # the highest RSS of the process's life so far (VmHWM)


def _kilobytes(path: Path, skip: int = 0) -> dict[str, int]:
    """The "Name:   1234 kB" lines of a /proc file, in kB."""
    values: dict[str, int] = {}
    for line in path.read_text().splitlines()[skip:]:
        key, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) == 2 and fields[1] == "kB":
            values[key] = int(fields[0])
    return values


def memory(pid: int) -> Memory:
    """RSS and PSS of one process, from /proc/<pid>/smaps_rollup; peak RSS from its status."""
    rollup = _kilobytes(Path(f"/proc/{pid}/smaps_rollup"), skip=1)
    status = _kilobytes(Path(f"/proc/{pid}/status"))
    return Memory(
        rss_mb=rollup["Rss"] / 1024,
        pss_mb=rollup["Pss"] / 1024,
        peak_rss_mb=status["VmHWM"] / 1024,
    )
