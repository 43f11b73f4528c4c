"""The outbox state machine, as single conditional UPDATEs (one round trip each).

    queued (due) ─claim─> sending ──250──> sent
    retrying ─claim─>    │ ├──4xx/timeout──> retrying (next_attempt_at = now + backoff)
    sending (lease       │ └──5xx/auth or attempts used up──> failed
      expired) ─claim─>

Every finishing UPDATE is fenced by `attempts`: a worker whose lease expired and whose row was
claimed again by another worker cannot overwrite the newer outcome. Every attempt that reached
the server (or tried to) adds a `delivery_attempts` row in the same transaction as its outcome,
fenced or not: the log tells what happened, the email's row what it led to.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import (
    Executable,
    Update,
    and_,
    bindparam,
    case,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError

from web.extensions import db
from web.models import (
    Attachment,
    AttemptOutcome,
    DeliveryAttempt,
    Email,
    EmailStatus,
    utcnow,
)
from web.outbox.addresses import bare_address

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ClaimedEmail:
    """What the worker needs of a row it has claimed (a plain copy, not a session object)."""

    id: int
    attempts: int
    recipients: list[str]
    cc: list[str] | None
    bcc: list[str] | None
    reply_to: str | None
    sender: str
    subject: str
    text_body: str
    html_body: str
    message_id: str
    created_at: datetime
    send_at: datetime | None
    attachment_count: int

    @property
    def envelope_recipients(self) -> list[str]:
        """To, Cc and Bcc as bare addresses, each once: what RCPT TO names."""
        every = [*self.recipients, *(self.cc or ()), *(self.bcc or ())]
        return list(dict.fromkeys(bare_address(mailbox) for mailbox in every))


@dataclass(frozen=True)
class Attempt:
    """When an attempt started, how long it took, and which worker process made it."""

    started_at: datetime
    duration_ms: int
    worker: str


def this_worker() -> str:
    """The name an attempt records for the process making it: host/pid."""
    return f"{socket.gethostname()}/{os.getpid()}"


_emails = Email.__table__
_INSERT_ATTEMPTS = insert(DeliveryAttempt.__table__)

# The statements are built once, with bind parameters, and reused: building and hashing a
# statement per call cost more CPU than the database spent running it (docs/benchmarks.md).
_CLAIM = (
    update(_emails)
    .where(
        _emails.c.id.in_(bindparam("row_ids", expanding=True)),
        _emails.c.attempts < bindparam("max_attempts"),
        # One expression, the row's due time: queued, due at once or at send_at; retrying, at
        # the end of the backoff; sending, when its lease expires (NULL, never, otherwise).
        # Written as two conditions, each matched a partial index (models.py), and PostgreSQL,
        # its statistics stale after a bulk INSERT, chose those over the primary key: a claim
        # of 100 ids walked a million due rows (0.6 s) instead of looking up 100.
        case(
            (
                _emails.c.status.in_((EmailStatus.QUEUED, EmailStatus.RETRYING)),
                _emails.c.next_attempt_at,
            ),
            (_emails.c.status == EmailStatus.SENDING, _emails.c.lease_expires_at),
        )
        <= bindparam("now"),
    )
    .values(
        status=EmailStatus.SENDING,
        attempts=_emails.c.attempts + 1,
        lease_expires_at=bindparam("lease_until"),
        updated_at=bindparam("now"),
    )
    .returning(*(_emails.c[name] for name in ClaimedEmail.__dataclass_fields__))
)


def claim_many(
    email_ids: list[int], *, lease_seconds: float, max_attempts: int
) -> list[ClaimedEmail]:
    """Take, in one statement, each of these rows that is ours to send now, for one attempt
    each; return them in id order (the others are sent, held by another worker, or not due).

    Two workers claiming the same ids at once each get a row at most once between them: on
    PostgreSQL the second UPDATE waits for the first's row locks and then finds the rows
    `sending`; SQLite runs one writer at a time."""
    if not email_ids:
        return []
    now = utcnow()
    params = {
        "row_ids": sorted(set(email_ids)),
        "max_attempts": max_attempts,
        "now": now,
        "lease_until": now + timedelta(seconds=lease_seconds),
    }

    def step() -> list[ClaimedEmail]:
        rows = db.session.execute(_CLAIM, params).all()
        db.session.commit()
        return sorted((ClaimedEmail(**row._asdict()) for row in rows), key=lambda e: e.id)

    return _retry_if_disconnected(step)


def claim(email_id: int, *, lease_seconds: float, max_attempts: int) -> ClaimedEmail | None:
    """Take the row for one attempt, or return None if it is not ours to send now."""
    claimed = claim_many([email_id], lease_seconds=lease_seconds, max_attempts=max_attempts)
    return claimed[0] if claimed else None


@functools.cache
def _finish_statement(columns: tuple[str, ...]) -> Update:
    """The fenced UPDATE that sets `columns` (one statement per kind of outcome)."""
    return (
        update(_emails)
        .where(
            _emails.c.id == bindparam("row_id"),
            _emails.c.status == EmailStatus.SENDING,
            _emails.c.attempts == bindparam("row_attempts"),
        )
        .values({name: bindparam(f"new_{name}") for name in columns})
    )


def _finish(email_id: int, attempts: int, log_row: dict[str, object], **values: object) -> bool:
    """Apply the outcome of attempt number `attempts`; False if the row moved on meanwhile."""
    return _finish_many([(email_id, attempts, values)], [log_row]) == 1


def _finish_many(
    outcomes: list[tuple[int, int, dict[str, object]]], log_rows: list[dict[str, object]]
) -> int:
    """Apply several outcomes, as (id, attempts, values) with the same columns in `values`,
    and add their attempts' rows, in one transaction; return how many rows took theirs."""
    now = utcnow()
    params = [
        _finish_params(email_id, attempts, values, now) for email_id, attempts, values in outcomes
    ]
    statement = _finish_statement_for(params[0])
    first_run = True

    def step() -> int:
        nonlocal first_run
        count = db.session.execute(statement, params).rowcount
        # Run again after a lost connection, a step whose commit had gone through finds every
        # row fenced off: its attempts are already logged, and logging them twice would lie.
        if first_run or count:
            db.session.execute(_INSERT_ATTEMPTS, log_rows)
        first_run = False
        db.session.commit()
        return count

    return _retry_if_disconnected(step)


def _finish_params(
    email_id: int, attempts: int, values: dict[str, object], now: datetime
) -> dict[str, object]:
    row: dict[str, object] = {"row_id": email_id, "row_attempts": attempts}
    row.update({f"new_{name}": value for name, value in values.items()})
    row.update(new_lease_expires_at=None, new_updated_at=now)
    return row


def _finish_statement_for(params: dict[str, object]) -> Update:
    columns = {name.removeprefix("new_") for name in params} - {"row_id", "row_attempts"}
    return _finish_statement(tuple(sorted(columns)))


def _log_row(
    email_id: int,
    number: int,
    attempt: Attempt,
    outcome: AttemptOutcome,
    reply: str,
    *,
    error_class: str | None = None,
    refused: dict[str, str] | None = None,
) -> dict[str, object]:
    return {
        "email_id": email_id,
        "number": number,
        "started_at": attempt.started_at,
        "finished_at": attempt.started_at + timedelta(milliseconds=attempt.duration_ms),
        "duration_ms": attempt.duration_ms,
        "worker": attempt.worker,
        "outcome": outcome,
        "reply": reply,
        "error_class": error_class,
        "refused_recipients": refused or None,
    }


@dataclass(frozen=True)
class Failure:
    """An attempt that did not deliver: the reason (the server's reply or the error's text),
    which is also the email's `last_error`, and the class of the error behind it."""

    reason: str
    error_class: str

    def log_fields(self) -> dict[str, str]:
        return {"reply": self.reason, "error_class": self.error_class}


@dataclass(frozen=True)
class Sent:
    """A 250 to record: attempt number `attempts` of row `email_id` was accepted."""

    email_id: int
    attempts: int
    reply: str
    refused: dict[str, str]
    attempt: Attempt


def mark_sent(
    email_id: int, attempts: int, reply: str, refused: dict[str, str], attempt: Attempt
) -> bool:
    return mark_sent_many([Sent(email_id, attempts, reply, refused, attempt)]) == 1


def mark_sent_many(sent: list[Sent]) -> int:
    """Record these accepted emails together (one round trip, one commit); return how many
    rows were still `sending` under that attempt (the others had moved on)."""
    now = utcnow()
    return _finish_many(
        [
            (
                each.email_id,
                each.attempts,
                {
                    "status": EmailStatus.SENT,
                    "sent_at": now,
                    "smtp_reply": each.reply,
                    "refused_recipients": each.refused or None,
                    "next_attempt_at": None,
                    "last_error": (
                        ("some recipients refused: " + "; ".join(each.refused))
                        if each.refused
                        else None
                    ),
                },
            )
            for each in sent
        ],
        [
            _log_row(
                each.email_id,
                each.attempts,
                each.attempt,
                AttemptOutcome.SENT,
                each.reply,
                refused=each.refused,
            )
            for each in sent
        ],
    )


def mark_retrying(
    email_id: int, attempts: int, delay: float, error: Failure, attempt: Attempt
) -> bool:
    return _finish(
        email_id,
        attempts,
        _log_row(email_id, attempts, attempt, AttemptOutcome.RETRY, **error.log_fields()),
        status=EmailStatus.RETRYING,
        next_attempt_at=utcnow() + timedelta(seconds=delay),
        last_error=error.reason,
    )


def mark_failed(email_id: int, attempts: int, error: Failure, attempt: Attempt) -> bool:
    return _finish(
        email_id,
        attempts,
        _log_row(email_id, attempts, attempt, AttemptOutcome.FAILED, **error.log_fields()),
        status=EmailStatus.FAILED,
        next_attempt_at=None,
        last_error=error.reason,
    )


_RELEASE = (
    update(_emails)
    .where(
        _emails.c.id == bindparam("row_id"),
        _emails.c.status == EmailStatus.SENDING,
        _emails.c.attempts == bindparam("row_attempts"),
    )
    .values(
        status=case((_emails.c.attempts == 1, EmailStatus.QUEUED), else_=EmailStatus.RETRYING),
        attempts=_emails.c.attempts - 1,
        next_attempt_at=bindparam("now"),
        lease_expires_at=None,
        updated_at=bindparam("now"),
    )
)


def release(emails: list[tuple[int, int]]) -> None:
    """Give back claimed rows, as (id, attempts), that were not attempted (their batch ran out
    of time): as they were before the claim, due now, for the sweeper to publish again."""
    if not emails:
        return
    now = utcnow()
    params = [{"row_id": i, "row_attempts": a, "now": now} for i, a in emails]
    _retry_if_disconnected(lambda: _execute_and_commit(_RELEASE, params))


def attachments_of(email_id: int) -> list[tuple[str, str, bytes]]:
    """The email's attachments as (filename, content_type, data), in their order."""
    statement = (
        select(Attachment.filename, Attachment.content_type, Attachment.data)
        .where(Attachment.email_id == email_id)
        .order_by(Attachment.position)
    )

    def step() -> list[tuple[str, str, bytes]]:
        rows = [tuple(row) for row in db.session.execute(statement)]
        db.session.commit()
        return rows

    return _retry_if_disconnected(step)


def due_for_sweep(
    *,
    grace_seconds: float,
    max_attempts: int,
    limit: int = 500,
    after_id: int = 0,
    priority: str | None = None,
    honour_marks: bool = True,
) -> list[tuple[int, str]]:
    """(id, priority) of the rows the sweeper should (re-)publish: queued and due (at once or
    at their `send_at`), retrying and due, or sending with an expired lease.

    `grace_seconds` keeps the sweeper away from rows whose own message is about to be
    consumed (just queued, or a retry whose countdown is running). A row never published
    (scheduled, bulk, or given back unattempted) has no message: the sweeper publishes it as
    soon as it is due. With `honour_marks`, a queued or
    retrying row marked as published (`mark_published`) is left alone until the mark expires.
    Rows come in id order, from `after_id` on (the next batch starts after the last id), of
    one `priority` if given.
    """
    now = utcnow()
    stale = now - timedelta(seconds=grace_seconds)
    not_just_published = (
        or_(Email.lease_expires_at.is_(None), Email.lease_expires_at <= now)
        if honour_marks
        else true()
    )
    statement = (
        select(Email.id, Email.priority)
        .where(
            or_(
                and_(
                    Email.status == EmailStatus.QUEUED,
                    Email.next_attempt_at <= now,
                    # never published (scheduled, bulk, given back): no message to wait for
                    or_(Email.created_at <= stale, Email.lease_expires_at.is_(None)),
                    not_just_published,
                ),
                and_(
                    Email.status == EmailStatus.RETRYING,
                    Email.next_attempt_at <= stale,
                    not_just_published,
                ),
                and_(Email.status == EmailStatus.SENDING, Email.lease_expires_at <= now),
            ),
            # What ix_emails_unfinished_priority_id holds: the sent and failed rows are skipped.
            Email.status.in_((EmailStatus.QUEUED, EmailStatus.RETRYING, EmailStatus.SENDING)),
            Email.attempts < max_attempts,
            Email.id > after_id,
        )
        .order_by(Email.id)
        .limit(limit)
    )
    if priority is not None:
        statement = statement.where(Email.priority == priority)
    return _retry_if_disconnected(lambda: [tuple(row) for row in db.session.execute(statement)])


def mark_published(email_ids: list[int], *, hold: timedelta) -> None:
    """Mark these queued or retrying rows as published for `hold`, as web.outbox.api marks the
    rows it publishes at commit: `lease_expires_at` then means "a message for it is on the
    way" (a claim replaces it with the claim's lease; a `sending` row's lease is its worker's).
    When the sweeper honours the marks: `worker.tasks.sweep_outbox`.
    """
    if not email_ids:
        return
    statement = (
        update(Email)
        .where(
            Email.id.in_(email_ids),
            Email.status.in_((EmailStatus.QUEUED, EmailStatus.RETRYING)),
        )
        .values(lease_expires_at=utcnow() + hold)
        .execution_options(synchronize_session=False)
    )
    _retry_if_disconnected(lambda: _execute_and_commit(statement))


LOST_WORKER = Failure("the worker was lost during the last allowed attempt", "WorkerLost")


def fail_abandoned(*, max_attempts: int) -> int:
    """Rows whose last allowed attempt died with its worker: mark them failed, and log that
    attempt (from its claim, the row's `updated_at`, to now), since its worker could not."""
    now = utcnow()
    statement = select(Email.id, Email.attempts, Email.updated_at).where(
        Email.status == EmailStatus.SENDING,
        Email.lease_expires_at <= now,
        Email.attempts >= max_attempts,
    )
    abandoned = _retry_if_disconnected(lambda: db.session.execute(statement).all())
    values = {"status": EmailStatus.FAILED, "last_error": LOST_WORKER.reason}

    def step() -> int:
        failed = 0
        for email_id, attempts, claimed_at in abandoned:
            params = _finish_params(email_id, attempts, values, now)
            # One by one: a row whose worker turned out alive and recorded its outcome
            # meanwhile is fenced off, and its attempt is that worker's to log.
            if db.session.execute(_finish_statement_for(params), params).rowcount:
                elapsed = int((now - claimed_at).total_seconds() * 1000)
                attempt = Attempt(claimed_at, elapsed, "unknown")
                fields = LOST_WORKER.log_fields()
                row = _log_row(email_id, attempts, attempt, AttemptOutcome.FAILED, **fields)
                db.session.execute(_INSERT_ATTEMPTS, row)
                failed += 1
        db.session.commit()
        return failed

    return _retry_if_disconnected(step) if abandoned else 0


def _execute_and_commit(
    statement: Executable, params: dict[str, object] | list[dict[str, object]] | None = None
) -> int:
    """Run one UPDATE (for each set of `params`), commit, and return how many rows changed."""
    count = db.session.execute(statement, params).rowcount
    db.session.commit()
    return count


def _retry_if_disconnected(step: Callable[[], T]) -> T:
    """Run `step` (one statement and its commit); once more if the connection was dead.

    A pooled connection can die unnoticed (a database restart or failover, a proxy's idle
    cut); the first statement on it fails and SQLAlchemy discards the pool. Running the step
    again on a new connection is safe even when the first run committed just before the
    connection died: a claimed row is not claimable again, and an outcome fenced by `attempts`
    matches no row the second time. Without this, a dead connection at `mark_sent` left a
    delivered email `sending` until its lease expired, and the sweeper had it sent again.
    """
    try:
        return step()
    except DBAPIError as exc:
        db.session.rollback()
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost (%s): trying again on a new one", exc.orig)
    return step()
