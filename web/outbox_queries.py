"""What the operators see of the outbox and may do to it: one module for the dashboard and the CLI.

`web/admin.py` and `web/outbox_cli.py` both call these functions, so the page and the terminal
cannot disagree about a count, an age or which rows a retry or a purge touches.

Nothing here commits: the caller does, which for `requeue` is also what publishes the email
(web.outbox publishes after commit and forgets on rollback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import load_only

from web.extensions import db
from web.models import Email, EmailStatus, utcnow
from web.outbox import publish_after_commit

STATUSES: tuple[str, ...] = tuple(status.value for status in EmailStatus)
UNDELIVERED: tuple[str, ...] = (EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING)

# The columns of a list row: the bodies can be large and no list shows them.
_LIST_COLUMNS = (
    Email.id,
    Email.recipients,
    Email.subject,
    Email.status,
    Email.attempts,
    Email.last_error,
    Email.created_at,
    Email.sent_at,
)


@dataclass(frozen=True)
class OutboxStats:
    counts: dict[str, int]  # every status, zeros included, in STATUSES order
    oldest_undelivered: timedelta | None  # age of the oldest queued/sending/retrying email


@dataclass(frozen=True)
class EmailPage:
    items: list[Email]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def is_status(value: str | None) -> bool:
    return value in STATUSES


def stats() -> OutboxStats:
    """Counts per status and the age of the oldest undelivered email."""
    found = dict(
        db.session.execute(select(Email.status, func.count()).group_by(Email.status)).all()
    )
    counts = {status: found.get(status, 0) for status in STATUSES}
    oldest = db.session.scalar(
        select(func.min(Email.created_at)).where(Email.status.in_(UNDELIVERED))
    )
    age = None if oldest is None else max(utcnow() - oldest, timedelta(0))
    return OutboxStats(counts=counts, oldest_undelivered=age)


def email_page(page: int, per_page: int, status: str | None = None) -> EmailPage:
    """Page `page` (from 1; past the end means the last page) of emails, newest first.

    `status` must be one of STATUSES or None (every status).
    """
    count = select(func.count()).select_from(Email)
    if status is not None:
        count = count.where(Email.status == status)
    total = db.session.scalar(count) or 0
    page = min(max(page, 1), max(1, math.ceil(total / per_page)))
    return EmailPage(
        items=recent_emails(per_page, status=status, offset=(page - 1) * per_page),
        page=page,
        per_page=per_page,
        total=total,
    )


def recent_emails(limit: int, *, status: str | None = None, offset: int = 0) -> list[Email]:
    """Up to `limit` emails, newest first, without their bodies."""
    statement = select(Email).options(load_only(*_LIST_COLUMNS))
    if status is not None:
        statement = statement.where(Email.status == status)
    statement = (
        statement.order_by(Email.created_at.desc(), Email.id.desc()).offset(offset).limit(limit)
    )
    return list(db.session.scalars(statement))


def get_email(email_id: int) -> Email | None:
    return db.session.get(Email, email_id)


def email_status(email_id: int) -> str | None:
    """The email's status, or None if there is no such email."""
    return db.session.scalar(select(Email.status).where(Email.id == email_id))


def requeue(email_id: int) -> bool:
    """Put a `failed` email back in the queue; False (and no change) for any other status.

    The row starts over: `queued`, attempts 0, due now. `last_error` is kept as the reason of
    the earlier failure until the next attempt replaces it. The email is published when the
    caller commits; if the broker is down then, the sweeper publishes it.
    """
    now = utcnow()
    statement = (
        update(Email)
        .where(Email.id == email_id, Email.status == EmailStatus.FAILED)
        .values(
            status=EmailStatus.QUEUED,
            attempts=0,
            next_attempt_at=now,
            lease_expires_at=None,
            updated_at=now,
        )
        .returning(Email.priority)
        .execution_options(synchronize_session=False)
    )
    priority = db.session.scalar(statement)
    if priority is None:
        return False
    publish_after_commit(email_id, priority)
    return True


def purge_sent(older_than: timedelta) -> int:
    """Delete `sent` emails delivered more than `older_than` ago, with their attachments
    (ON DELETE CASCADE); return how many emails."""
    statement = (
        delete(Email)
        .where(Email.status == EmailStatus.SENT, Email.sent_at < utcnow() - older_than)
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(statement).rowcount


def describe_age(age: timedelta | None) -> str:
    """A short human age: "45 s", "3 min", "2 h 5 min", "4 d 3 h"; "none" for no age."""
    if age is None:
        return "none"
    seconds = int(age.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"
