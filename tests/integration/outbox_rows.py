"""Outbox rows for the dashboard and CLI tests, made the way the app makes them."""

from __future__ import annotations

from flask import Flask

from tests.integration.conftest import ADMIN
from web.extensions import db
from web.models import Email
from web.outbox.api import send_email


def add_emails(app: Flask, count: int = 1, **fields: object) -> list[int]:
    """Queue `count` test emails with `send_email` and commit them; return their ids.

    `fields` (e.g. status="failed") are set before the commit, in the same transaction, so a
    running worker never sees the rows as they were first queued.
    """
    with app.app_context():
        emails = []
        for number in range(count):
            email = db.session.get(Email, send_email(ADMIN, f"Test {number}", "mail/test_email"))
            for name, value in fields.items():
                setattr(email, name, value)
            emails.append(email)
        db.session.commit()
        return [email.id for email in emails]


def queue_email(app: Flask, *, fields: dict[str, object] | None = None, **options: object) -> int:
    """One test email through `send_email(**options)`, committed; `fields` are set on the row
    before the commit."""
    with app.app_context():
        email_id = send_email(ADMIN, "Test", "mail/test_email", **options)
        row = db.session.get(Email, email_id)
        for name, value in (fields or {}).items():
            setattr(row, name, value)
        db.session.commit()
        return email_id
