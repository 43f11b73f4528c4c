"""web/outbox/api.py: `send_email()` refuses bad input before anything is stored.

Nothing here is delivered: what reaches the SMTP server, and what crosses the broker, is proved
against the real services in tests/test_mail_api.py and tests/test_broker_payload.py.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.unit.conftest import ADMIN
from web.extensions import db
from web.models import Email
from web.outbox.api import InvalidEmail, send_email


def _count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Email)) or 0


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("admin@example.com\r\nBcc: victim@example.com", "Hi"),
        ("not an address", "Hi"),
        ("a@example.com, b@example.com", "Hi"),
        (ADMIN, "Hi\r\nBcc: victim@example.com"),
        (ADMIN, "Hi\nthere"),
    ],
)
def test_send_email_refuses_header_injection(app: Flask, to: str, subject: str) -> None:
    with app.app_context():
        with pytest.raises(ValueError):
            send_email(to, subject, "mail/new_user", name="x")
        db.session.commit()
    assert _count(app) == 0


def test_the_attachment_limit_comes_from_the_configuration(app: Flask) -> None:
    app.config["FLASKY_MAX_ATTACHMENT_BYTES"] = 1000
    with app.app_context():
        send_email(
            ADMIN, "Small", "mail/test_email", attachments=[("a", "text/plain", b"x" * 1000)]
        )
        with pytest.raises(InvalidEmail, match=r"attachments: 1,001 bytes in all, over the limit"):
            send_email(
                ADMIN, "Big", "mail/test_email", attachments=[("b", "text/plain", b"x" * 1001)]
            )
        db.session.rollback()


def test_a_nul_character_in_the_rendered_body_is_refused(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(InvalidEmail, match="context: the rendered body contains a NUL"):
            send_email(ADMIN, "New User", "mail/new_user", name="nul\x00byte")
        db.session.rollback()
    assert _count(app) == 0


def test_the_stored_email_has_the_prefix_the_sender_and_a_message_id_in_its_domain(
    app: Flask,
) -> None:
    app.config["FLASKY_MAIL_SENDER"] = "Flasky <noreply@mail.example.org>"
    with app.app_context():
        row = db.session.get(Email, send_email(ADMIN, "Hello", "mail/test_email"))
        assert row is not None
        assert row.subject == "[Flasky] Hello" and row.sender == "Flasky <noreply@mail.example.org>"
        assert row.message_id.startswith("<") and row.message_id.endswith("@mail.example.org>")
        assert (row.status, row.attempts, row.priority) == ("queued", 0, "normal")
        db.session.rollback()
