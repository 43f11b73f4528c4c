"""worker/claims.py: the outbox state machine as single UPDATEs, run here on SQLite in memory.

A claim takes a due row for one attempt; an outcome is written only by the attempt that owns the
row. Races between real workers, and PostgreSQL, are in tests/test_duplicates_and_outages.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from tests.unit.outbox_rows import add_row
from web.extensions import db
from web.models import DeliveryAttempt, Email, utcnow
from worker import claims

ATTEMPT = claims.Attempt(utcnow(), 120, "host/1")
REFUSED_451 = claims.Failure("451 try later", "SMTPDataError")
REFUSED_550 = claims.Failure("550 no such user", "SMTPRecipientsRefused")


def _commit() -> None:
    db.session.commit()


def _row(email_id: int) -> Email:
    db.session.expire_all()
    row = db.session.get(Email, email_id)
    assert row is not None
    return row


def test_a_due_queued_email_is_claimed_once(app_context: Flask) -> None:
    email_id = add_row(recipients=["a@example.com"], cc=["b@example.com"], bcc=["c@example.com"])
    _commit()
    claimed = claims.claim(email_id, lease_seconds=60, max_attempts=8)
    assert claimed is not None
    assert (claimed.id, claimed.attempts) == (email_id, 1)
    assert claimed.envelope_recipients == ["a@example.com", "b@example.com", "c@example.com"]
    row = _row(email_id)
    assert row.status == "sending" and row.attempts == 1
    assert timedelta(seconds=59) < row.lease_expires_at - utcnow() <= timedelta(seconds=60)
    assert claims.claim(email_id, lease_seconds=60, max_attempts=8) is None  # leased: not again


@pytest.mark.parametrize(
    "fields",
    [
        {"send_at": timedelta(hours=1)},  # scheduled for later
        {"status": "retrying", "next_attempt_at": timedelta(minutes=1)},  # backing off
        {"status": "sent"},
        {"status": "failed"},
        {"attempts": 8},  # every attempt used
    ],
)
def test_a_row_not_due_or_finished_is_not_claimed(
    app_context: Flask, fields: dict[str, object]
) -> None:
    # A timedelta is "that long from now", taken when the test runs, not when it is collected.
    now = utcnow()
    email_id = add_row(**{k: now + v if isinstance(v, timedelta) else v for k, v in fields.items()})
    _commit()
    assert claims.claim(email_id, lease_seconds=60, max_attempts=8) is None
    assert claims.claim(999, lease_seconds=60, max_attempts=8) is None


def test_an_expired_lease_is_claimed_again_and_fences_the_first_attempt(
    app_context: Flask,
) -> None:
    email_id = add_row()
    _commit()
    first = claims.claim(email_id, lease_seconds=60, max_attempts=8)
    db.session.execute(
        db.update(Email).where(Email.id == email_id).values(lease_expires_at=utcnow())
    )
    _commit()
    second = claims.claim(email_id, lease_seconds=60, max_attempts=8)
    assert first is not None and second is not None and second.attempts == 2
    assert claims.mark_sent(email_id, first.attempts, "250 ok", {}, ATTEMPT) is False  # too late
    assert claims.mark_sent(email_id, second.attempts, "250 2.0.0 queued as X", {}, ATTEMPT) is True
    row = _row(email_id)
    assert (row.status, row.smtp_reply, row.lease_expires_at) == (
        "sent",
        "250 2.0.0 queued as X",
        None,
    )
    assert row.sent_at is not None and row.next_attempt_at is None


def test_a_partial_refusal_is_recorded_on_the_sent_row(app_context: Flask) -> None:
    email_id = add_row()
    _commit()
    claimed = claims.claim(email_id, lease_seconds=60, max_attempts=8)
    refused = {"b@example.com": "550 5.1.1 no such user"}
    assert claims.mark_sent(email_id, claimed.attempts, "250 ok", refused, ATTEMPT)
    row = _row(email_id)
    assert row.refused_recipients == refused
    assert row.last_error == "some recipients refused: b@example.com"


def test_retrying_sets_the_next_attempt_and_failing_ends_the_row(app_context: Flask) -> None:
    retried, failed = add_row(), add_row()
    _commit()
    one = claims.claim(retried, lease_seconds=60, max_attempts=8)
    two = claims.claim(failed, lease_seconds=60, max_attempts=8)
    assert claims.mark_retrying(retried, one.attempts, 30.0, REFUSED_451, ATTEMPT)
    assert claims.mark_failed(failed, two.attempts, REFUSED_550, ATTEMPT)
    row = _row(retried)
    assert (row.status, row.last_error, row.lease_expires_at) == ("retrying", "451 try later", None)
    assert timedelta(seconds=29) < row.next_attempt_at - utcnow() <= timedelta(seconds=30)
    row = _row(failed)
    assert (row.status, row.last_error, row.next_attempt_at) == ("failed", "550 no such user", None)
    assert (
        claims.mark_sent(failed, two.attempts, "250 ok", {}, ATTEMPT) is False
    )  # no longer sending


def test_attachments_come_in_their_order(app_context: Flask) -> None:
    files = (("z.txt", "text/plain", b"z"), ("a.pdf", "application/pdf", b"%"))
    email_id = add_row(attachments=files)
    _commit()
    assert claims.attachments_of(email_id) == [
        ("z.txt", "text/plain", b"z"),
        ("a.pdf", "application/pdf", b"%"),
    ]


def test_the_sweep_finds_what_is_due_lost_or_abandoned(app_context: Flask) -> None:
    old = utcnow() - timedelta(minutes=5)
    hold = utcnow() + timedelta(minutes=10)
    # Published at commit (marked) a moment ago: its own message is about to be consumed.
    fresh = add_row(lease_expires_at=hold)
    lost = add_row(created_at=old, next_attempt_at=old)
    scheduled_due = add_row(send_at=utcnow() - timedelta(seconds=1))
    bulk = add_row(priority="bulk")  # never published at commit: no message to wait for
    marked = add_row(created_at=old, next_attempt_at=old, lease_expires_at=hold)
    retry_due = add_row(status="retrying", next_attempt_at=old, priority="high")
    expired = add_row(status="sending", attempts=1, lease_expires_at=old)
    add_row(status="sending", attempts=8, lease_expires_at=old)  # last attempt died: abandoned
    add_row(status="sent", created_at=old)
    _commit()
    due = claims.due_for_sweep(grace_seconds=30, max_attempts=8)
    assert due == [
        (lost, "normal"),
        (scheduled_due, "normal"),
        (bulk, "bulk"),
        (retry_due, "high"),
        (expired, "normal"),
    ]
    # An empty queue: the marks are ignored, but the grace still keeps the fresh row.
    unmarked = claims.due_for_sweep(grace_seconds=30, max_attempts=8, honour_marks=False)
    assert marked in dict(unmarked) and fresh not in dict(unmarked)
    assert claims.due_for_sweep(grace_seconds=30, max_attempts=8, priority="high") == [
        (retry_due, "high")
    ]
    assert claims.due_for_sweep(grace_seconds=30, max_attempts=8, after_id=retry_due) == [
        (expired, "normal")
    ]
    assert claims.due_for_sweep(grace_seconds=30, max_attempts=8, limit=1) == [(lost, "normal")]


def test_published_rows_are_marked_and_abandoned_ones_failed(app_context: Flask) -> None:
    old = utcnow() - timedelta(minutes=5)
    queued = add_row(created_at=old, next_attempt_at=old)
    sending = add_row(status="sending", attempts=1, lease_expires_at=old)
    abandoned = add_row(status="sending", attempts=8, lease_expires_at=old)
    _commit()
    claims.mark_published([queued, sending], hold=timedelta(minutes=10))
    assert claims.due_for_sweep(grace_seconds=30, max_attempts=8) == [(sending, "normal")]
    assert _row(sending).lease_expires_at == old  # a sending row's lease is its worker's
    assert claims.fail_abandoned(max_attempts=8) == 1
    row = _row(abandoned)
    assert row.status == "failed"
    assert row.last_error == "the worker was lost during the last allowed attempt"
    assert [(a.number, a.outcome, a.error_class, a.worker) for a in _attempts(abandoned)] == [
        (8, "failed", "WorkerLost", "unknown")
    ]
    assert claims.fail_abandoned(max_attempts=8) == 0  # once


def _attempts(email_id: int) -> list[DeliveryAttempt]:
    statement = db.select(DeliveryAttempt).where(DeliveryAttempt.email_id == email_id)
    return list(db.session.scalars(statement.order_by(DeliveryAttempt.id)))


def test_every_attempt_is_logged_with_its_outcome_even_when_fenced_off(
    app_context: Flask,
) -> None:
    email_id = add_row()
    _commit()
    first = claims.claim(email_id, lease_seconds=60, max_attempts=8)
    assert claims.mark_retrying(email_id, first.attempts, 0.0, REFUSED_451, ATTEMPT)
    db.session.execute(
        db.update(Email).where(Email.id == email_id).values(next_attempt_at=utcnow())
    )
    _commit()
    second = claims.claim(email_id, lease_seconds=60, max_attempts=8)
    db.session.execute(
        db.update(Email).where(Email.id == email_id).values(lease_expires_at=utcnow())
    )
    _commit()
    third = claims.claim(email_id, lease_seconds=60, max_attempts=8)
    refused = {"b@example.com": "550 5.1.1 no such user"}
    assert claims.mark_sent(email_id, third.attempts, "250 queued as Y", refused, ATTEMPT)
    # The second attempt's worker was slow, not lost: its server did answer, too late.
    assert not claims.mark_sent(email_id, second.attempts, "250 queued as X", {}, ATTEMPT)
    logged = [
        (a.number, a.outcome, a.reply, a.error_class, a.refused_recipients)
        for a in _attempts(email_id)
    ]
    assert logged == [
        (1, "retry", "451 try later", "SMTPDataError", None),
        (3, "sent", "250 queued as Y", None, refused),
        (2, "sent", "250 queued as X", None, None),
    ]
    (last,) = [a for a in _attempts(email_id) if a.number == 3]
    assert (last.started_at, last.duration_ms, last.worker) == (ATTEMPT.started_at, 120, "host/1")
    assert last.finished_at - last.started_at == timedelta(milliseconds=120)
