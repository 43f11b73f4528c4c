"""What /proc says about a process tree (Linux; no psutil)."""

from __future__ import annotations

import contextlib
from pathlib import Path


def children_of(pid: int) -> list[int]:
    """The direct children of `pid` (a Celery worker's pool), from every thread's children list."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found.extend(int(child) for child in (task / "children").read_text().split())
    return sorted(found)


def live_children_of(pid: int) -> list[int]:
    """`children_of(pid)` less the zombies: children that have exited and wait to be reaped
    (a killed pool process stays listed until its parent notices)."""
    return [child for child in children_of(pid) if _state(child) not in ("Z", None)]


def _state(pid: int) -> str | None:
    """The one-letter state of /proc/<pid>/stat (R, S, Z...); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat[stat.rindex(")") + 2]  # after "pid (comm) ": comm may hold spaces and ")"


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    pids = [pid]
    for child in children_of(pid):
        pids.extend(tree(child))
    return pids
