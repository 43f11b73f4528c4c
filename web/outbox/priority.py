"""Email priorities and the Celery queue each one is published to (celeryconfig.py names the
queues and says how a worker takes from them)."""

from __future__ import annotations

import enum

from celeryconfig import PRIORITY_QUEUES


class Priority(enum.StrEnum):
    HIGH = "high"  # password resets, sign-in links: someone is waiting for them
    NORMAL = "normal"
    BULK = "bulk"  # announcements and digests: may wait behind everything else


def queue_for(priority: str) -> str:
    """The Celery queue for `priority` ("flasky.high", "flasky.normal", "flasky.bulk")."""
    return PRIORITY_QUEUES[Priority(priority).value]
