"""Sampling profiles with py-spy, for `--profile` (optional: `.venv/bin/pip install py-spy`).

py-spy samples a running process tree from outside without slowing it down much, and by
default keeps only the samples of threads that are running, so the share of samples inside a
function is its share of the CPU. `shares` turns a "raw" (collapsed stacks) recording into
those shares; multiplied by the CPU per email measured from /proc, they give milliseconds.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def executable() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("bench: --profile needs py-spy: .venv/bin/pip install py-spy")
    return found


@contextmanager
def recording(pid: int, output: Path, rate: int = 250) -> Iterator[None]:
    """Sample `pid` and its children while the block runs; collapsed stacks to `output`."""
    spy = subprocess.Popen(
        [
            executable(),
            "record",
            "--pid", str(pid),
            "--subprocesses",
            "--gil",  # only samples holding the GIL: running Python, not waiting on I/O
            "--nonblocking",
            "--rate", str(rate),
            "--format", "raw",
            "--output", str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # attaching takes a moment; the first samples would be missed otherwise
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()


def _stacks(raw: Path) -> Iterator[tuple[list[str], int]]:
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def shares(raw: Path, needles: dict[str, str]) -> tuple[int, dict[str, float]]:
    """Total samples, and for each label the share of samples with a frame containing its
    needle (e.g. "claim (worker/claims.py"), counted once per sample."""
    total = 0
    hits: Counter[str] = Counter()
    for frames, count in _stacks(raw):
        total += count
        for label, needle in needles.items():
            if any(needle in frame for frame in frames):
                hits[label] += count
    return total, {label: hits[label] / max(total, 1) for label in needles}


def top_self(raw: Path, limit: int = 30) -> str:
    """The functions most often on top of the stack (own CPU), as a text table."""
    total = 0
    own: Counter[str] = Counter()
    for frames, count in _stacks(raw):
        total += count
        own[frames[-1]] += count
    lines = [f"{'share':>6}  function (file:line)   [{total} samples]"]
    lines.extend(f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(limit))
    return "\n".join(lines)
