"""The check's output: one line when a step starts, one with its time when it ends, and the
table of every step's time at the end (so that a first and a second run can be compared)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


class CheckFailed(Exception):
    """What the stack did is not what it must do; the message says what and where."""


@dataclass
class Step:
    title: str
    seconds: float = 0.0
    outcome: str = "running"
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """A detail worth reading in the output (a version, what was reused, a message)."""
        self.notes.append(text)
        say(f"      {text}")


def say(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


def seconds(duration: float) -> str:
    if duration < 60:
        return f"{duration:.1f}s"
    minutes, rest = divmod(duration, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


class Steps:
    """Times every step of a run; `summary()` prints them all."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.started = time.monotonic()

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        current = Step(title)
        self.steps.append(current)
        say(f"--> {title}")
        begun = time.monotonic()
        try:
            yield current
        except BaseException as error:
            current.outcome = "interrupted" if isinstance(error, KeyboardInterrupt) else "FAILED"
            raise
        else:
            current.outcome = "ok"
        finally:
            current.seconds = time.monotonic() - begun
            say(f"    {current.outcome} in {seconds(current.seconds)}")

    def summary(self) -> None:
        say("")
        say("step times:")
        width = max((len(step.title) for step in self.steps), default=0)
        for step in self.steps:
            say(f"  {step.title:<{width}}  {seconds(step.seconds):>8}  {step.outcome}")
        say(f"  {'total':<{width}}  {seconds(time.monotonic() - self.started):>8}")
