"""Email priorities and the Celery queue each one is published to.

The default worker consumes every queue (celeryconfig.py). The Redis transport takes the next
message from the queues in turn, so a high-priority email waits for at most the messages
already reserved by the worker, never behind a backlog of bulk ones.
"""

from __future__ import annotations

import enum


class Priority(enum.StrEnum):
    HIGH = "high"  # password resets, sign-in links: someone is waiting for them
    NORMAL = "normal"
    BULK = "bulk"  # announcements and digests: may wait behind everything else


def queue_for(priority: str) -> str:
    """The Celery queue for `priority` ("flasky.high", "flasky.normal", "flasky.bulk")."""
    return f"flasky.{Priority(priority).value}"


QUEUES: tuple[str, ...] = tuple(queue_for(p) for p in Priority)
