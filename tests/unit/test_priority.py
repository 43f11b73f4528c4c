"""web/outbox/priority.py: the three priorities and the Celery queue of each."""

from __future__ import annotations

import pytest

from web.outbox.priority import Priority, queue_for


@pytest.mark.parametrize(
    ("priority", "queue"),
    [("high", "flasky.high"), ("normal", "flasky.normal"), ("bulk", "flasky.bulk")],
)
def test_each_priority_has_its_queue(priority: str, queue: str) -> None:
    assert queue_for(priority) == queue == queue_for(Priority(priority))


def test_the_priorities_go_from_high_to_bulk() -> None:
    assert [p.value for p in Priority] == ["high", "normal", "bulk"]


def test_an_unknown_priority_has_no_queue() -> None:
    with pytest.raises(ValueError, match="urgent"):
        queue_for("urgent")
