"""What the operators see of the outbox and may do to it: one module for the dashboard and the CLI.

`web/admin/views.py` and `web/outbox/cli.py` both call these functions, so the page and the terminal
cannot disagree about a count, an age or which rows a retry or a purge touches.

Nothing here commits: the caller does, which for `requeue` is also what publishes the email
(web.outbox.api publishes after commit and forgets on rollback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, update
from sqlalchemy.orm import load_only

from web.extensions import db
from web.models import Attachment, Email, EmailStatus, utcnow
from web.outbox.api import publish_after_commit

STATUSES: tuple[str, ...] = tuple(status.value for status in EmailStatus)
UNDELIVERED: tuple[str, ...] = (EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING)
# Not a status but a filter beside them: queued emails whose `send_at` is still ahead. They are
# counted in "queued" too, and they are not late, so no "oldest undelivered" age counts them.
SCHEDULED = "scheduled"
FILTERS: tuple[str, ...] = (*STATUSES, SCHEDULED)

# The columns of a list row: the bodies can be large and no list shows them.
_LIST_COLUMNS = (
    Email.id,
    Email.recipients,
    Email.subject,
    Email.status,
    Email.priority,
    Email.send_at,
    Email.attempts,
    Email.last_error,
    Email.created_at,
    Email.sent_at,
)


@dataclass(frozen=True)
class OutboxStats:
    counts: dict[str, int]  # every status, zeros included, in STATUSES order
    scheduled: int  # queued emails not yet due; also counted in counts["queued"]
    # How long the longest-waiting due queued/sending/retrying email has been due (since its
    # `send_at`, or since it was created); None when no undelivered email is due.
    oldest_undelivered: timedelta | None


@dataclass(frozen=True)
class AttachmentInfo:
    """What the dashboard shows of an attachment: never its content."""

    filename: str
    content_type: str
    size: int  # bytes

    @property
    def size_text(self) -> str:
        return describe_size(self.size)


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


def is_filter(value: str | None) -> bool:
    """A status, or SCHEDULED."""
    return value in FILTERS


def _scheduled(now: datetime) -> ColumnElement[bool]:
    return and_(Email.status == EmailStatus.QUEUED, Email.send_at > now)


def _due(now: datetime) -> ColumnElement[bool]:
    # Spelled out, not not_(_scheduled(now)): with send_at NULL that would be NULL, not true.
    return or_(Email.send_at.is_(None), Email.send_at <= now)


def is_scheduled(email: Email, now: datetime) -> bool:
    """The Python twin of the SCHEDULED filter, for a row already loaded."""
    return email.status == EmailStatus.QUEUED and email.send_at is not None and email.send_at > now


def stats(now: datetime | None = None) -> OutboxStats:
    """Counts per status, how many are scheduled, and the age of the oldest due undelivered
    email, counted from its `send_at` if it had one: a scheduled email is late only once due.
    """
    now = now or utcnow()
    found = dict(
        db.session.execute(select(Email.status, func.count()).group_by(Email.status)).all()
    )
    counts = {status: found.get(status, 0) for status in STATUSES}
    # send_at, when set, is always after created_at (send_email stores only a future one).
    due_since = func.coalesce(Email.send_at, Email.created_at)
    scheduled, oldest = db.session.execute(
        select(
            func.count().filter(_scheduled(now)),
            func.min(due_since).filter(_due(now)),
        ).where(Email.status.in_(UNDELIVERED))
    ).one()
    age = None if oldest is None else max(now - oldest, timedelta(0))
    return OutboxStats(counts=counts, scheduled=scheduled or 0, oldest_undelivered=age)


def email_page(
    page: int, per_page: int, status: str | None = None, *, now: datetime | None = None
) -> EmailPage:
    """Page `page` (from 1; past the end means the last page) of emails, newest first.

    `status` must be one of FILTERS or None (every email).
    """
    now = now or utcnow()
    count = _filtered(select(func.count()).select_from(Email), status, now)
    total = db.session.scalar(count) or 0
    page = min(max(page, 1), max(1, math.ceil(total / per_page)))
    return EmailPage(
        items=recent_emails(per_page, status=status, offset=(page - 1) * per_page, now=now),
        page=page,
        per_page=per_page,
        total=total,
    )


def recent_emails(
    limit: int, *, status: str | None = None, offset: int = 0, now: datetime | None = None
) -> list[Email]:
    """Up to `limit` emails, newest first, without their bodies.

    `status` must be one of FILTERS or None (every email).
    """
    statement = _filtered(select(Email).options(load_only(*_LIST_COLUMNS)), status, now)
    statement = (
        statement.order_by(Email.created_at.desc(), Email.id.desc()).offset(offset).limit(limit)
    )
    return list(db.session.scalars(statement))


def _filtered(statement: Select, status: str | None, now: datetime | None) -> Select:
    if status == SCHEDULED:
        return statement.where(_scheduled(now or utcnow()))
    if status is not None:
        return statement.where(Email.status == status)
    return statement


def get_email(email_id: int) -> Email | None:
    return db.session.get(Email, email_id)


def attachments_of(email_id: int) -> list[AttachmentInfo]:
    """The email's attachments in their order: name, type and size, without loading the data."""
    statement = (
        select(Attachment.filename, Attachment.content_type, func.length(Attachment.data))
        .where(Attachment.email_id == email_id)
        .order_by(Attachment.position)
    )
    return [AttachmentInfo(*row) for row in db.session.execute(statement)]


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


def describe_size(size: int) -> str:
    """For people: 1 byte, 900 bytes, 1.5 KiB (1,536 bytes), 2.0 MiB (2,097,152 bytes)."""
    exact = f"{size:,} byte{'' if size == 1 else 's'}"
    if size < 1024:
        return exact
    scaled, unit = (size / 1024, "KiB") if size < 1024 * 1024 else (size / 1024**2, "MiB")
    return f"{scaled:.1f} {unit} ({exact})"


def describe_time(moment: datetime | None) -> str:
    """A naive UTC time as ISO 8601 with a Z, as `send-test-email --at` accepts it."""
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
