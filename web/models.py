"""Database models: the users of the name form, and the outbox of emails."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from web.extensions import db


def utcnow() -> datetime:
    """The current time in UTC, without tzinfo: all times in the database are naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


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


class Email(db.Model):
    """One email in the outbox. The database, not the broker, is the source of truth."""

    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # Stable across retries and duplicates, so receivers can drop a second copy.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)

    status: Mapped[str] = mapped_column(String(16), default=EmailStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
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
        # The sweeper's and the dashboard's queries filter on status first.
        Index("ix_emails_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_emails_status_lease_expires_at", "status", "lease_expires_at"),
        Index("ix_emails_status_created_at", "status", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<Email {self.id} {self.status}>"
