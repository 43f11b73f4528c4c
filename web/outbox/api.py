"""The outbox API: `send_email()` records an email in the caller's transaction.

This is the book's `send_email(to, subject, template, **kwargs)` (docs/design.md, "Data
flow"), made durable and extended with keyword-only options (docs/mail-api.md):
it checks every argument, renders both bodies now, in the web process, adds an `emails` row
(and its attachments) to the current database session, and returns the row's id. Nothing is
sent and nothing is published until the caller commits; after the commit the new ids are
published to Celery, on their priority's queue, with a short bound (`publish_after_commit`).
If the broker is down the rows stay `queued` and the sweeper publishes them later. An email
scheduled for later is never published at commit: the sweeper publishes it once it is due, so
no message with a long ETA ever waits on the broker.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Insert, event, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from celeryconfig import SEND_EMAIL_TASK, SWEEP_OUTBOX_TASK
from web.extensions import db
from web.models import Attachment, Email, EmailStatus, utcnow
from web.outbox import checks
from web.outbox.checks import InvalidEmail
from web.outbox.priority import Priority, queue_for
from web.outbox.render import UnstorableContext, render_bodies
from web.outbox.size import check_size

__all__ = ["InvalidEmail", "publish", "publish_after_commit", "send_email", "sweep_after_commit"]

log = logging.getLogger(__name__)

_PENDING_KEY = "flasky_outbox_pending"
_SWEEP_KEY = "flasky_outbox_sweep"
# INSERT ... ON CONFLICT DO NOTHING: a racing duplicate key is skipped, not an error that
# would abort the caller's whole transaction (PostgreSQL).
_INSERT_FOR_DIALECT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def send_email(
    to: str | Iterable[str],
    subject: str,
    template: str,
    *,
    cc: str | Iterable[str] | None = None,
    bcc: str | Iterable[str] | None = None,
    reply_to: str | None = None,
    attachments: Iterable[tuple[str, str, bytes]] = (),
    send_at: datetime | None = None,
    priority: str = Priority.NORMAL,
    idempotency_key: str | None = None,
    **context: object,
) -> int:
    """Render `template`.txt and `template`.html (CSS inlined), add the email to the outbox,
    and return its id.

    Raises `InvalidEmail` (a ValueError naming the argument) for bad input, before anything
    is added to the session, so that it fails in the caller, where it can be shown to a
    person, and not later in the worker or the database: the caller's transaction stays
    usable. With an `idempotency_key` already used, returns that email's id and queues
    nothing, also when the other call is running at the same time in another process.
    """
    config = current_app.config
    now = utcnow()
    key = checks.idempotency_key(idempotency_key)
    recipients = checks.addresses("to", to, required=True)
    common = common_fields(
        subject, cc=cc, bcc=bcc, reply_to=reply_to, send_at=send_at, priority=priority, now=now
    )
    files = checks.attachments(attachments)
    try:
        bodies = render_bodies(template, **context)
    except UnstorableContext as exc:
        raise InvalidEmail("context", exc.reason) from None
    row = email_fields(common, recipients, key, bodies)
    check_size(row, files, config["FLASKY_MAX_MESSAGE_BYTES"], context_field="context")
    row["attachment_count"] = len(files)
    # No SELECT for the key first: the INSERT finds an earlier row with it, in one round trip.
    email_id = db.session.scalar(insert_statement("id").values(row))
    if email_id is None:  # the key was used before, or by a concurrent call that committed
        existing = _email_with_key(key)
        if existing is None:
            raise RuntimeError(f"idempotency key {key!r}: conflict with a row that is not there")
        return existing
    if files:
        db.session.execute(
            insert(Attachment),
            [
                {"email_id": email_id, "position": position, **vars(file)}
                for position, file in enumerate(files)
            ],
        )
    if common["send_at"] is None:
        publish_after_commit(email_id, common["priority"])
    return email_id


def common_fields(
    subject: str,
    *,
    cc: str | Iterable[str] | None,
    bcc: str | Iterable[str] | None,
    reply_to: str | None,
    send_at: datetime | None,
    priority: str,
    now: datetime,
) -> dict[str, object]:
    """The checked columns that every email of one call shares: all but the recipients, the
    idempotency key, the bodies and the Message-ID (`email_fields`). Shared with
    `web.outbox.bulk`, so that a bulk's rows are the rows `send_email` would write."""
    config = current_app.config
    row: dict[str, object] = {
        "cc": checks.addresses("cc", cc, required=False) or None,
        "bcc": checks.addresses("bcc", bcc, required=False) or None,
        "reply_to": checks.reply_to(reply_to),
        "priority": checks.priority(priority),
        "send_at": checks.send_at(send_at, now),
    }
    row.update(
        sender=config["FLASKY_MAIL_SENDER"],
        subject=checks.subject(subject, config["FLASKY_MAIL_SUBJECT_PREFIX"]),
        status=EmailStatus.QUEUED,
        attempts=0,
        attachment_count=0,
        next_attempt_at=row["send_at"] or now,
        # Published at commit (unless scheduled or bulk): the sweeper leaves it to that message.
        lease_expires_at=(
            None
            if row["send_at"] or row["priority"] == Priority.BULK
            else now + publish_hold(config)
        ),
        created_at=now,
        updated_at=now,
    )
    return row


def email_fields(
    common: Mapping[str, object],
    recipients: list[str],
    idempotency_key: str | None,
    bodies: tuple[str, str],
) -> dict[str, object]:
    """One email's row: `common` (see `common_fields`), its own checked recipients and key,
    its rendered bodies and a new Message-ID."""
    text_body, html_body = bodies
    return {
        **common,
        "recipients": recipients,
        "idempotency_key": idempotency_key,
        "text_body": text_body,
        "html_body": html_body,
        "message_id": _new_message_id(str(common["sender"])),
    }


def publish_hold(config: Mapping[str, Any]) -> timedelta:
    """How long a published row is left to its message: as long as Redis itself waits before
    redelivering one (the broker's visibility timeout). See `worker.tasks.sweep_outbox`."""
    return timedelta(seconds=config["CELERY"]["broker_transport_options"]["visibility_timeout"])


def insert_statement(*returning: str) -> Insert:
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING the `returning` columns,
    for the session's database."""
    return _insert_for(db.session.get_bind().dialect.name, returning)


@functools.cache
def _insert_for(dialect: str, returning: tuple[str, ...]) -> Insert:
    """Built once per dialect: building the statement per call costs more than running it."""
    try:
        make_insert = _INSERT_FOR_DIALECT[dialect]
    except KeyError:
        raise RuntimeError(f"the outbox supports PostgreSQL and SQLite, not {dialect}") from None
    return (
        make_insert(Email)
        .on_conflict_do_nothing(index_elements=[Email.idempotency_key])
        .returning(*(getattr(Email, column) for column in returning))
    )


def _email_with_key(key: str | None) -> int | None:
    return db.session.scalar(select(Email.id).where(Email.idempotency_key == key))


def publish_after_commit(email_id: int, priority: str = Priority.NORMAL) -> None:
    """Publish `email_id` once the current transaction commits; forget it on rollback."""
    db.session.info.setdefault(_PENDING_KEY, []).append((email_id, priority))


def sweep_after_commit() -> None:
    """Ask for a sweep once the current transaction commits; forget it on rollback. For rows
    left to the sweeper rather than published one by one (a bulk retry's)."""
    db.session.info[_SWEEP_KEY] = True


def _new_message_id(sender: str) -> str:
    """A globally unique Message-ID in the sender's domain, fixed for the life of the row."""
    domain = sender.rpartition("@")[2].rstrip(">").strip() or "flasky.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


def publish(emails: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """Publish `send_email` tasks for these (id, priority) pairs: one message per priority and
    per FLASKY_BATCH_SIZE ids, on the priority's queue; return the pairs that could not be
    published.

    Bounded by the broker socket timeouts (celeryconfig.py: well under a second). A failure
    is logged, not raised: the rows are committed and the sweeper will publish them.
    """
    celery_app = current_app.extensions["celery"]
    size = current_app.config["FLASKY_BATCH_SIZE"]
    batches = [
        (priority, ids[start : start + size])
        for priority, ids in _ids_by_priority(emails).items()
        for start in range(0, len(ids), size)
    ]
    for position, (priority, ids) in enumerate(batches):
        try:
            result = celery_app.send_task(
                SEND_EMAIL_TASK, args=[ids], queue=queue_for(priority), retry=False
            )
        except Exception as exc:  # kombu/redis raise many types for "broker unreachable"
            log.warning(
                "emails %s stay queued, the sweeper will publish them: broker unavailable (%s)",
                ids,
                type(exc).__name__,
            )
            return [(i, p) for p, batch in batches[position:] for i in batch]
        log.info("emails %s queued as task %s", ids, result.id)
    return []


def _ids_by_priority(emails: Iterable[tuple[int, str]]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for email_id, priority in emails:
        grouped.setdefault(priority, []).append(email_id)
    return grouped


def _publish_after_commit(session: Session) -> None:
    """Publish the committed emails, but not the bulk ones: those wait in the database and
    are fed to the broker as workers take them (`worker.tasks.sweep_outbox`); a sweep is asked
    for, so that a worker starts on them without waiting for beat."""
    pending = session.info.pop(_PENDING_KEY, None) or []
    sweep = session.info.pop(_SWEEP_KEY, False)
    if any(p != Priority.BULK for _, p in pending):
        publish((i, p) for i, p in pending if p != Priority.BULK)
    if sweep or any(p == Priority.BULK for _, p in pending):
        _ask_for_a_sweep()


def _ask_for_a_sweep() -> None:
    config = current_app.config
    try:
        current_app.extensions["celery"].send_task(
            SWEEP_OUTBOX_TASK,
            queue=queue_for(Priority.HIGH),
            expires=config["FLASKY_SWEEP_INTERVAL"],
            retry=False,
        )
    except Exception as exc:  # the next sweep of beat publishes them all the same
        log.warning("no sweep asked for: broker unavailable (%s)", type(exc).__name__)


def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_SWEEP_KEY, None)


def register_session_hooks() -> None:
    """Publish after commit, forget after rollback (idempotent)."""
    if not event.contains(db.session, "after_commit", _publish_after_commit):
        event.listen(db.session, "after_commit", _publish_after_commit)
        event.listen(db.session, "after_rollback", _forget_after_rollback)
