"""Outbox rows for the dashboard and CLI tests, made the way the app makes them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import Flask

from tests.integration.conftest import ADMIN
from web.extensions import db
from web.models import DeliveryAttempt, Email
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


def add_attempts(app: Flask, email_id: int, attempts: Iterable[tuple[datetime, str]]) -> None:
    """Delivery attempts of `email_id`, each (finished_at, outcome), as the worker records them."""
    with app.app_context():
        for number, (finished_at, outcome) in enumerate(attempts, start=1):
            db.session.add(
                DeliveryAttempt(
                    email_id=email_id,
                    number=number,
                    started_at=finished_at - timedelta(milliseconds=80),
                    finished_at=finished_at,
                    duration_ms=80,
                    worker="test@host:1",
                    outcome=outcome,
                    reply="250 2.0.0 Ok" if outcome == "sent" else "451 4.7.1 Try again later",
                )
            )
        db.session.commit()
