"""flasky's one clock: every time the outbox stores or compares comes from `utcnow()`.

Times in the database are naive UTC. `now` is looked up on every call, so a test can replace
it (for example a day ahead, to deliver a scheduled email without sleeping a day), in its own
process or in a worker process it starts (tests/integration/shifted_clock.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _system_now() -> datetime:
    return datetime.now(UTC)


now: Callable[[], datetime] = _system_now


def utcnow() -> datetime:
    """The current time in UTC, without tzinfo."""
    return now().astimezone(UTC).replace(tzinfo=None)
