"""The outbox state machine, as single conditional UPDATEs (one round trip each).

    queued ──claim──> sending ──250──> sent
    retrying ─claim─>    │ ├──4xx/timeout──> retrying (next_attempt_at = now + backoff)
    sending (lease       │ └──5xx/auth or attempts used up──> failed
      expired) ─claim─>

Every finishing UPDATE is fenced by `attempts`: a worker whose lease expired and whose row was
claimed again by another worker cannot overwrite the newer outcome.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from web.extensions import db
from web.models import Email, EmailStatus, utcnow


@dataclass(frozen=True)
class ClaimedEmail:
    """What the worker needs of a row it has claimed (a plain copy, not a session object)."""

    id: int
    attempts: int
    recipients: list[str]
    sender: str
    subject: str
    text_body: str
    html_body: str
    message_id: str
    created_at: datetime


def claim(email_id: int, *, lease_seconds: float, max_attempts: int) -> ClaimedEmail | None:
    """Take the row for one attempt, or return None if it is not ours to send now."""
    now = utcnow()
    claimable = or_(
        Email.status == EmailStatus.QUEUED,
        and_(Email.status == EmailStatus.RETRYING, Email.next_attempt_at <= now),
        and_(Email.status == EmailStatus.SENDING, Email.lease_expires_at <= now),
    )
    statement = (
        update(Email)
        .where(Email.id == email_id, Email.attempts < max_attempts, claimable)
        .values(
            status=EmailStatus.SENDING,
            attempts=Email.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(
            Email.id,
            Email.attempts,
            Email.recipients,
            Email.sender,
            Email.subject,
            Email.text_body,
            Email.html_body,
            Email.message_id,
            Email.created_at,
        )
        .execution_options(synchronize_session=False)
    )
    row = db.session.execute(statement).one_or_none()
    db.session.commit()
    return ClaimedEmail(**row._asdict()) if row else None


def _finish(email_id: int, attempts: int, **values: object) -> bool:
    """Apply the outcome of attempt number `attempts`; False if the row moved on meanwhile."""
    statement = (
        update(Email)
        .where(
            Email.id == email_id,
            Email.status == EmailStatus.SENDING,
            Email.attempts == attempts,
        )
        .values(lease_expires_at=None, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    updated = db.session.execute(statement).rowcount
    db.session.commit()
    return updated == 1


def mark_sent(email_id: int, attempts: int, reply: str, refused: dict[str, str]) -> bool:
    return _finish(
        email_id,
        attempts,
        status=EmailStatus.SENT,
        sent_at=utcnow(),
        smtp_reply=reply,
        refused_recipients=refused or None,
        next_attempt_at=None,
        last_error=("some recipients refused: " + "; ".join(refused)) if refused else None,
    )


def mark_retrying(email_id: int, attempts: int, delay: float, reason: str) -> bool:
    return _finish(
        email_id,
        attempts,
        status=EmailStatus.RETRYING,
        next_attempt_at=utcnow() + timedelta(seconds=delay),
        last_error=reason,
    )


def mark_failed(email_id: int, attempts: int, reason: str) -> bool:
    return _finish(
        email_id, attempts, status=EmailStatus.FAILED, next_attempt_at=None, last_error=reason
    )


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base * 2^(n-1))."""
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return ceiling * random.uniform(0.5, 1.0)


def due_for_sweep(*, grace_seconds: float, max_attempts: int, limit: int = 500) -> list[int]:
    """Ids the sweeper should (re-)publish: left queued, retrying and due, or lease expired.

    `grace_seconds` keeps the sweeper away from rows whose own message is about to be
    consumed (just queued, or a retry whose countdown is running).
    """
    now = utcnow()
    stale = now - timedelta(seconds=grace_seconds)
    statement = (
        select(Email.id)
        .where(
            or_(
                and_(Email.status == EmailStatus.QUEUED, Email.created_at <= stale),
                and_(Email.status == EmailStatus.RETRYING, Email.next_attempt_at <= stale),
                and_(Email.status == EmailStatus.SENDING, Email.lease_expires_at <= now),
            ),
            Email.attempts < max_attempts,
        )
        .order_by(Email.id)
        .limit(limit)
    )
    return list(db.session.scalars(statement))


def fail_abandoned(*, max_attempts: int) -> int:
    """Rows whose last allowed attempt died with its worker: mark them failed."""
    statement = (
        update(Email)
        .where(
            Email.status == EmailStatus.SENDING,
            Email.lease_expires_at <= utcnow(),
            Email.attempts >= max_attempts,
        )
        .values(
            status=EmailStatus.FAILED,
            lease_expires_at=None,
            updated_at=utcnow(),
            last_error="the worker was lost during the last allowed attempt",
        )
        .execution_options(synchronize_session=False)
    )
    count = db.session.execute(statement).rowcount
    db.session.commit()
    return count
