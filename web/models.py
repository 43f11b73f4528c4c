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

__all__ = ["Attachment", "Email", "EmailStatus", "User", "utcnow"]


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
        # The dashboard's counts and lists filter on status first.
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
