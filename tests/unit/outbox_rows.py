"""Outbox rows written straight into the in-memory database, with every field the tests need."""

from __future__ import annotations

import itertools
from datetime import datetime

from web.extensions import db
from web.models import Attachment, Email, utcnow

_numbers = itertools.count(1)


def add_row(*, attachments: tuple[tuple[str, str, bytes], ...] = (), **fields: object) -> int:
    """Insert one email (queued and due now unless `fields` say otherwise); flush; its id."""
    now: datetime = utcnow()
    number = next(_numbers)
    values: dict[str, object] = {
        "recipients": ["admin@example.com"],
        "sender": "Flasky Admin <flasky@example.com>",
        "subject": f"[Flasky] Test {number}",
        "text_body": "text",
        "html_body": "<p>html</p>",
        "message_id": f"<{number}@example.com>",
        "priority": "normal",
        "status": "queued",
        "attempts": 0,
        "attachment_count": len(attachments),
        "next_attempt_at": fields.get("send_at") or now,
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    email = Email(**values)
    db.session.add(email)
    db.session.flush()
    for position, (filename, content_type, data) in enumerate(attachments):
        db.session.add(
            Attachment(
                email_id=email.id,
                position=position,
                filename=filename,
                content_type=content_type,
                data=data,
            )
        )
    db.session.flush()
    return email.id
