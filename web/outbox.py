"""The outbox API: `send_email()` records an email in the caller's transaction.

This is the book's `send_email(to, subject, template, **kwargs)` (DESIGN.md calls it
`queue_email`), made durable: it renders both bodies now, in the web process, adds an `Email`
row to the current database session, and returns. Nothing is sent and nothing is published
until the caller commits; after the commit the new ids are published to Celery with a short
bound (`publish_after_commit`). If the broker is down the rows stay `queued` and the sweeper
publishes them later.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from web.addresses import check_address, check_header_value
from web.extensions import db
from web.mail_render import render_bodies
from web.models import Email, EmailStatus, utcnow

log = logging.getLogger(__name__)

SEND_EMAIL_TASK = "flasky.send_email"
_PENDING_KEY = "flasky_outbox_pending"
# Text that mail readers decode as an RFC 2047 encoded word ("=?charset?Q?text?=").
_ENCODED_WORD = re.compile(r"=\?.*\?=")


def send_email(to: str | Iterable[str], subject: str, template: str, **context: object) -> Email:
    """Render `template`.txt and `template`.html (CSS inlined) and add the email to the outbox.

    Raises ValueError for an invalid recipient or subject, or a body no database can store,
    so that bad input fails in the caller, where it can be shown to a person, and not later
    in the worker.
    """
    recipients = [check_address(addr) for addr in ([to] if isinstance(to, str) else to)]
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    check_header_value("the subject", subject)
    if _ENCODED_WORD.search(subject):
        # An ASCII subject goes into the header as it is, and readers would decode it.
        raise ValueError("the subject must not contain RFC 2047 encoded words (=?...?=)")
    config = current_app.config
    prefix = config["FLASKY_MAIL_SUBJECT_PREFIX"]
    text_body, html_body = render_bodies(template, **context)
    if "\x00" in text_body or "\x00" in html_body:
        # PostgreSQL cannot store it (SQLite can: refuse it on both, with a clear reason).
        raise ValueError("an email body cannot contain NUL characters (from the context?)")
    now = utcnow()
    email = Email(
        recipients=recipients,
        sender=config["FLASKY_MAIL_SENDER"],
        subject=f"{prefix} {subject}" if prefix else subject,
        text_body=text_body,
        html_body=html_body,
        message_id=_new_message_id(config["FLASKY_MAIL_SENDER"]),
        status=EmailStatus.QUEUED,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    db.session.add(email)
    db.session.flush()  # assigns the id, inside the caller's transaction
    publish_after_commit(email.id)
    return email


def publish_after_commit(email_id: int) -> None:
    """Publish `email_id` once the current transaction commits; forget it on rollback."""
    db.session.info.setdefault(_PENDING_KEY, []).append(email_id)


def _new_message_id(sender: str) -> str:
    """A globally unique Message-ID in the sender's domain, fixed for the life of the row."""
    domain = sender.rpartition("@")[2].rstrip(">").strip() or "flasky.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


def publish(email_ids: Iterable[int]) -> list[int]:
    """Publish `send_email` tasks for these ids; return the ids that could not be published.

    Bounded by the broker socket timeouts in celeryconfig.py (well under a second). A failure
    is logged, not raised: the rows are committed and the sweeper will publish them.
    """
    celery_app = current_app.extensions["celery"]
    ids = list(email_ids)
    for position, email_id in enumerate(ids):
        try:
            result = celery_app.send_task(SEND_EMAIL_TASK, args=[email_id], retry=False)
        except Exception as exc:  # kombu/redis raise many types for "broker unreachable"
            log.warning(
                "email %s stays queued, the sweeper will publish it: broker unavailable (%s)",
                email_id,
                type(exc).__name__,
            )
            return ids[position:]
        log.info("email %s queued as task %s", email_id, result.id)
    return []


def _publish_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        publish(pending)


def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def register_session_hooks() -> None:
    """Publish after commit, forget after rollback (idempotent)."""
    if not event.contains(db.session, "after_commit", _publish_after_commit):
        event.listen(db.session, "after_commit", _publish_after_commit)
        event.listen(db.session, "after_rollback", _forget_after_rollback)
