"""Database models: the users of the name form, and the outbox of emails."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from web.clock import utcnow
from web.extensions import db
from web.outbox.priority import Priority

__all__ = [
    "AdminAction",
    "AdminSession",
    "Attachment",
    "AttemptOutcome",
    "DeliveryAttempt",
    "Email",
    "EmailStatus",
    "PurgedAttempts",
    "User",
    "utcnow",
]


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unique: two requests racing with the same new name cannot both insert it.
    username: Mapped[str] = mapped_column(String(64), unique=True)

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class EmailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    # An operator stopped a scheduled email before it was due: nothing sends it any more
    # (the claim and the sweeper only take queued, retrying and sending rows).
    CANCELLED = "cancelled"


_UNFINISHED = "status IN ('queued', 'retrying', 'sending')"
_WAITING = "status IN ('queued', 'retrying')"
_SENDING = "status = 'sending'"


class Email(db.Model):
    """One email in the outbox. The database, not the broker, is the source of truth."""

    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)  # To
    cc: Mapped[list[str] | None] = mapped_column(JSON)
    # Only in the SMTP envelope, never in a header of the message.
    bcc: Mapped[list[str] | None] = mapped_column(JSON)
    reply_to: Mapped[str | None] = mapped_column(String(320))
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # Stable across retries and duplicates, so receivers can drop a second copy.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)

    priority: Mapped[str] = mapped_column(String(8), default=Priority.NORMAL)
    # Caller-chosen, e.g. "new-user:42": a second send_email() with it returns this row.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Not sent before this time (naive UTC); None: as soon as possible.
    send_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Saves the worker a query for the (usual) email without attachments.
    attachment_count: Mapped[int] = mapped_column(Integer, default=0)

    status: Mapped[str] = mapped_column(String(16), default=EmailStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the row may next be claimed: now, `send_at`, or the end of a retry's backoff.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    # Recipients the server refused while accepting the others: {address: "550 ..."}.
    refused_recipients: Mapped[dict[str, str] | None] = mapped_column(JSON)

    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        # The counts per status read this index alone, not the table with its bodies; the
        # dashboard's status filters start here too. Not (status, priority), which would serve
        # /metrics' counts too: the planner took it for the bulk top-up and sorted every
        # waiting row (docs/benchmarks.md, 5d).
        Index("ix_emails_status_created_at", "status", "created_at"),
        # The sweeper's: due rows, and expired leases. Partial, so that a claim or an outcome
        # (never a HOT update: it changes indexed columns) adds entries to small indexes, not
        # to ones as large as the whole history (docs/benchmarks.md, the claim at 1M rows).
        Index(
            "ix_emails_waiting_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text(_WAITING),
            sqlite_where=text(_WAITING),
        ),
        Index(
            "ix_emails_sending_lease_expires_at",
            "lease_expires_at",
            postgresql_where=text(_SENDING),
            sqlite_where=text(_SENDING),
        ),
        # The top-up walks the unfinished emails of one priority in id order: at a million
        # rows, mostly sent, it must not walk the sent ones (worker/claims.py due_for_sweep).
        Index(
            "ix_emails_unfinished_priority_id",
            "priority",
            "id",
            postgresql_where=text(_UNFINISHED),
            sqlite_where=text(_UNFINISHED),
        ),
    )

    def __repr__(self) -> str:
        return f"<Email {self.id} {self.status}>"


class Attachment(db.Model):
    """A file attached to an outbox email, kept in the database with it (never in Redis)."""

    __tablename__ = "email_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order in the message
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    def __repr__(self) -> str:
        return f"<Attachment {self.id} of email {self.email_id}>"


class AttemptOutcome(enum.StrEnum):
    SENT = "sent"  # the server accepted the message (some recipients may have been refused)
    RETRY = "retry"  # a temporary failure: the email will be tried again
    FAILED = "failed"  # the last attempt: a permanent failure, or the attempts used up


class DeliveryAttempt(db.Model):
    """One delivery attempt of an email: what the server answered, or what went wrong.

    Written by the worker in the transaction that records the outcome on the email, so the
    log and the email's status never disagree. `emails.last_error` stays the summary.
    """

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1 for the first attempt
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime] = mapped_column(DateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(255))  # host and process id
    outcome: Mapped[str] = mapped_column(String(8))  # an AttemptOutcome
    # The SMTP reply ("250 2.0.0 Ok: queued as ...", "451 4.7.1 Try again later"), or the
    # error's class and text when the server never answered ("TimeoutError: ...").
    reply: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(64))
    refused_recipients: Mapped[dict[str, str] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_delivery_attempts_email_id_number", "email_id", "number"),
        # The dashboard's chart counts attempts per interval and outcome: from the index alone.
        Index("ix_delivery_attempts_finished_at_outcome", "finished_at", "outcome"),
    )

    def __repr__(self) -> str:
        return f"<DeliveryAttempt {self.email_id}#{self.number} {self.outcome}>"


class PurgedAttempts(db.Model):
    """How many attempts of each outcome `flask outbox purge` has deleted: /metrics adds them
    to the attempts still kept, so that its counters never go down."""

    __tablename__ = "purged_attempts"

    outcome: Mapped[str] = mapped_column(String(8), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AdminAction(db.Model):
    """An operator's action on the outbox (a retry, a bulk retry, a cancel), from the
    dashboard or the CLI: who, when, what, and how many emails it changed."""

    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))  # "admin:<name>" or "cli:<os user>"
    action: Mapped[str] = mapped_column(String(32))  # "retry", "bulk-retry", "cancel"
    # What it applied to: one email id, or the filter of a bulk action, as JSON.
    target: Mapped[dict[str, object]] = mapped_column(JSON)
    count: Mapped[int] = mapped_column(Integer)  # emails changed

    def __repr__(self) -> str:
        return f"<AdminAction {self.id} {self.action}>"


class AdminSession(db.Model):
    """A live admin login (web/admin/auth.py). The cookie holds the session's id; the row holds
    only its SHA-256, so that a copy of this table opens nothing. Logging out deletes the row.

    `fingerprint` is an HMAC of the credentials the session was opened with: once the password
    (or username, or SECRET_KEY) changes, no row matches and every session is over.
    """

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the id
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Written at most once a minute (auth.TOUCH_INTERVAL), not on every request.
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)  # the absolute end

    def __repr__(self) -> str:
        return f"<AdminSession created {self.created_at:%Y-%m-%d %H:%M}>"
