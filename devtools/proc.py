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


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    pids = [pid]
    for child in children_of(pid):
        pids.extend(tree(child))
    return pids
