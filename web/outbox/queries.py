"""What the operators see of the outbox and may do to it: one module for the dashboard and the CLI.

`web/admin/views.py` and `web/outbox/cli.py` both call these functions, so the page and the terminal
cannot disagree about a count, an age or which rows a purge touches. Which emails a filter
matches is web/outbox/search.py; the retries and cancels are web/outbox/actions.py.

Nothing here commits: the caller does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import load_only

from web.extensions import db
from web.models import Attachment, Email, EmailStatus, utcnow
from web.outbox import attempt_log, search
from web.outbox.search import EVERY_EMAIL, EmailFilter

STATUSES: tuple[str, ...] = tuple(status.value for status in EmailStatus)
UNDELIVERED: tuple[str, ...] = (EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING)
# The scheduled emails (search.SCHEDULED: queued, `send_at` still ahead) are counted in "queued"
# too, and they are not late, so no "oldest undelivered" age counts them.

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
    Email.idempotency_key,
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


def _due(now: datetime) -> ColumnElement[bool]:
    # Spelled out, not not_(search.scheduled(now)): with send_at NULL that would be NULL, not true.
    return or_(Email.send_at.is_(None), Email.send_at <= now)


def is_scheduled(email: Email, now: datetime) -> bool:
    """The Python twin of the SCHEDULED filter, for a row already loaded."""
    return email.status == EmailStatus.QUEUED and email.send_at is not None and email.send_at > now


def stats(now: datetime | None = None) -> OutboxStats:
    """Counts per status, how many are scheduled, and the age of the oldest due undelivered
    email (see `waiting`)."""
    now = now or utcnow()
    found = dict(
        db.session.execute(select(Email.status, func.count()).group_by(Email.status)).all()
    )
    counts = {status: found.get(status, 0) for status in STATUSES}
    scheduled, oldest = waiting(now)
    return OutboxStats(counts=counts, scheduled=scheduled, oldest_undelivered=oldest)


def waiting(now: datetime) -> tuple[int, timedelta | None]:
    """How many emails are scheduled, and how long the oldest due undelivered one has been due,
    counted from its `send_at` if it had one: a scheduled email is late only once due. One
    statement on the undelivered rows only (the partial indexes), however long the history."""
    # send_at, when set, is always after created_at (send_email stores only a future one).
    due_since = func.coalesce(Email.send_at, Email.created_at)
    scheduled, oldest = db.session.execute(
        select(
            func.count().filter(search.scheduled(now)),
            func.min(due_since).filter(_due(now)),
        ).where(Email.status.in_(UNDELIVERED))
    ).one()
    age = None if oldest is None else max(now - oldest, timedelta(0))
    return scheduled or 0, age


def email_page(
    page: int,
    per_page: int,
    email_filter: EmailFilter = EVERY_EMAIL,
    *,
    now: datetime | None = None,
) -> EmailPage:
    """Page `page` (from 1; past the end means the last page) of the emails `email_filter`
    matches, newest first; `total` counts only those.

    A first page that is not full is the whole result, so its count is its length: a search
    that finds a few emails (the usual one) reads the table once, not twice (no index serves
    a substring search: docs/benchmarks.md 5d)."""
    now = now or utcnow()
    if page <= 1:
        first = recent_emails(per_page, email_filter, now=now)
        total = len(first) if len(first) < per_page else count_emails(email_filter, now=now)
        return EmailPage(items=first, page=1, per_page=per_page, total=total)
    total = count_emails(email_filter, now=now)
    page = min(page, max(1, math.ceil(total / per_page)))
    items = recent_emails(per_page, email_filter, offset=(page - 1) * per_page, now=now)
    return EmailPage(items=items, page=page, per_page=per_page, total=total)


def count_emails(email_filter: EmailFilter = EVERY_EMAIL, *, now: datetime | None = None) -> int:
    """How many emails `email_filter` matches."""
    statement = search.apply(select(func.count()).select_from(Email), email_filter, now or utcnow())
    return db.session.scalar(statement) or 0


def recent_emails(
    limit: int,
    email_filter: EmailFilter = EVERY_EMAIL,
    *,
    offset: int = 0,
    now: datetime | None = None,
) -> list[Email]:
    """Up to `limit` emails that `email_filter` matches, newest first, without their bodies.

    Newest by id, the order the rows were added: the primary key serves it, where ordering
    by created_at sorted the whole table (0.5 s at a million rows, docs/benchmarks.md 5d)."""
    statement = search.apply(
        select(Email).options(load_only(*_LIST_COLUMNS)), email_filter, now or utcnow()
    )
    statement = statement.order_by(Email.id.desc()).offset(offset).limit(limit)
    return list(db.session.scalars(statement))


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


@dataclass(frozen=True)
class Purged:
    """How many emails a purge deleted, by status."""

    sent: int
    cancelled: int


def purge(older_than: timedelta) -> Purged:
    """Delete the finished emails older than `older_than`: `sent` ones by the time they were
    delivered, `cancelled` ones by the time they were cancelled (`updated_at`: nothing changes
    a cancelled row after). Their attachments and attempt logs go with them (ON DELETE CASCADE;
    the attempts are counted first, see attempt_log). Failed emails stay: each is an operator's
    to retry or to read."""
    cutoff = utcnow() - older_than
    old_sent = and_(Email.status == EmailStatus.SENT, Email.sent_at < cutoff)
    old_cancelled = and_(Email.status == EmailStatus.CANCELLED, Email.updated_at < cutoff)
    counts = []
    for old in (old_sent, old_cancelled):
        attempt_log.count_before_purge(old)
        statement = delete(Email).where(old).execution_options(synchronize_session=False)
        counts.append(db.session.execute(statement).rowcount)
    return Purged(*counts)


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
