"""The sweeper against a large backlog of scheduled emails: all published in one sweep, once.

No worker runs here, so every message the sweeper publishes stays in Redis to be counted. The
clock is moved (web.clock.now) instead of waiting for the emails to become due.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask import Flask

from tests.integration.conftest import ADMIN, emails
from tests.integration.queued import queued_ids
from web import clock
from web.extensions import db
from web.outbox.api import send_email
from worker.tasks import SWEEP_BATCH_SIZE, sweep_outbox

BACKLOG = 2 * SWEEP_BATCH_SIZE + 200  # three batches


def test_a_backlog_of_due_scheduled_emails_is_published_in_one_sweep_and_only_once(
    app: Flask, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_8 = datetime.now(UTC) + timedelta(hours=1)
    with app.app_context():
        for number in range(BACKLOG):
            send_email(ADMIN, f"Digest {number}", "mail/test_email", send_at=at_8, priority="bulk")
        db.session.commit()
    broker = redis.Redis.from_url(redis_url)
    assert broker.llen("flasky.bulk") == 0, "a scheduled email was published before it was due"

    def sweep(at: datetime) -> int:
        monkeypatch.setattr(clock, "now", lambda: at)
        with app.app_context():
            return sweep_outbox()

    assert sweep(at_8 - timedelta(seconds=1)) == 0
    assert sweep(at_8 + timedelta(seconds=1)) == BACKLOG
    assert sorted(queued_ids(broker)) == sorted(e.id for e in emails(app))
    # The next sweeps leave them alone: their messages are on the queue.
    assert sweep(at_8 + timedelta(seconds=2)) == 0
    assert len(queued_ids(broker)) == BACKLOG
    # Redis lost them (restarted empty): an empty queue holds no message for any row, so the
    # next sweep publishes them again.
    broker.flushdb()
    assert sweep(at_8 + timedelta(seconds=3)) == BACKLOG
    assert len(queued_ids(broker)) == BACKLOG


def test_the_sweeper_tops_each_queue_up_to_its_target_and_never_publishes_twice(
    app: Flask, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long bulk queue gets no more (its rows would only be published twice), and does not
    hold up a high-priority email that became due; the rows published by the web at commit
    are not published again either while their messages wait."""
    app.config["FLASKY_SWEEP_QUEUE_TARGET"] = 300
    at_8 = datetime.now(UTC) + timedelta(hours=1)
    with app.app_context():
        for number in range(1000):
            send_email(ADMIN, f"Digest {number}", "mail/test_email", send_at=at_8, priority="bulk")
        urgent = send_email(ADMIN, "Reset", "mail/test_email", send_at=at_8, priority="high")
        db.session.commit()
    broker = redis.Redis.from_url(redis_url)

    def sweep(seconds_after: float) -> int:
        monkeypatch.setattr(clock, "now", lambda: at_8 + timedelta(seconds=seconds_after))
        with app.app_context():
            return sweep_outbox()

    assert sweep(1) == 301
    assert queued_ids(broker, "flasky.high") == [urgent]
    first = queued_ids(broker)
    assert len(first) == 300
    assert sweep(2) == 0, "the bulk queue was full"
    # The workers take 200 of them (two messages of FLASKY_BATCH_SIZE, 100, ids): the next
    # sweep adds 200 others.
    for _ in range(2):
        broker.rpop("flasky.bulk")
    assert sweep(3) == 200
    waiting = queued_ids(broker)
    assert len(waiting) == 300 and not set(waiting[:200]) & set(first)
    # Emails queued now at normal priority are published by the web at commit; the sweeper
    # leaves them alone.
    monkeypatch.setattr(clock, "now", lambda: at_8 + timedelta(seconds=60))
    with app.app_context():
        fresh = [send_email(ADMIN, f"News {n}", "mail/test_email") for n in range(50)]
        db.session.commit()
    assert queued_ids(broker, "flasky.normal") == fresh  # in one message
    assert sweep(300) == 0  # minutes later, past the grace: their messages still wait
    assert queued_ids(broker, "flasky.normal") == fresh
