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


def test_the_limit_is_on_the_message_as_sent_and_comes_from_the_configuration(
    app: Flask,
) -> None:
    """75,000 bytes of file are over 100,000 once base64-encoded, with the bodies."""
    app.config["FLASKY_MAX_MESSAGE_BYTES"] = 100_000
    with app.app_context():
        send_email(
            ADMIN, "Small", "mail/test_email", attachments=[("a", "text/plain", bytes(60_000))]
        )
        with pytest.raises(InvalidEmail) as raised:
            send_email(
                ADMIN, "Big", "mail/test_email", attachments=[("b", "text/plain", bytes(75_000))]
            )
        assert raised.value.field == "attachments"
        assert raised.value.reason.startswith("75,000 bytes of files make a message of 10")
        assert "over the limit of 100,000 bytes (FLASKY_MAX_MESSAGE_BYTES)" in raised.value.reason
        db.session.rollback()


def test_rendered_bodies_over_the_limit_are_refused_as_the_context(app: Flask) -> None:
    app.config["FLASKY_MAX_MESSAGE_BYTES"] = 100_000
    with app.app_context():
        with pytest.raises(InvalidEmail, match="context: the rendered bodies make a message of"):
            send_email(ADMIN, "New User", "mail/new_user", name="x" * 50_000)
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


BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "invoice\u202egpj.exe" reads "invoiceexe.jpg"
BAD_CALLS: dict[str, tuple[str, dict[str, object]]] = {
    "a subject over the column with the prefix": ("subject", {"subject": "s" * 990}),
    "a bidi control in the subject": ("subject", {"subject": f"Invoice {BIDI}fdp.exe"}),
    "an invisible character in the subject": ("subject", {"subject": "Pay\u200bPal"}),
    "a bidi control in a To name": ("to", {"to": f"Admin {BIDI}troppuS <a@example.com>"}),
    "a bidi control in a Cc name": ("cc", {"cc": [f"Ann{BIDI} <ann@example.com>"]}),
    "a bidi control in a Bcc name": ("bcc", {"bcc": "Bob\u2066 <bob@example.com>"}),
    "a bidi control in the Reply-To name": (
        "reply_to",
        {"reply_to": f"Help{BIDI} <h@example.com>"},
    ),
    "a Reply-To over the column": ("reply_to", {"reply_to": f"{'h' * 310} <h@example.com>"}),
    "a bidi control in the key": ("idempotency_key", {"idempotency_key": f"user:{BIDI}42"}),
    "a bidi control in a filename": (
        "attachments",
        {"attachments": [(f"invoice{BIDI}gpj.exe", "image/jpeg", b"MZ")]},
    ),
    "a filename '..'": ("attachments", {"attachments": [("..", "text/plain", b"x")]}),
    "a filename '.'": ("attachments", {"attachments": [(".", "text/plain", b"x")]}),
    "a drive in a filename": ("attachments", {"attachments": [("C:evil.exe", "text/plain", b"x")]}),
    "a lone surrogate in the context": ("context", {"name": "\ud800"}),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_input_is_invalid_email_before_anything_is_added_to_the_session(
    app: Flask, case: str
) -> None:
    field, changes = BAD_CALLS[case]
    arguments: dict[str, object] = {"to": ADMIN, "subject": "Hi", "template": "mail/new_user"}
    arguments.update(changes)
    with app.app_context():
        with pytest.raises(InvalidEmail) as raised:
            send_email(**arguments)  # type: ignore[arg-type]
        assert raised.value.field == field
        assert not db.session.new, "the caller's session holds part of the email"
        db.session.commit()
    assert _count(app) == 0


def test_a_lone_surrogate_in_the_context_gets_a_clear_reason(app: Flask) -> None:
    with app.app_context(), pytest.raises(InvalidEmail) as raised:
        send_email(ADMIN, "New User", "mail/new_user", name="\udcff")
    assert str(raised.value) == (
        "context: the rendered body contains a lone surrogate (U+DCFF), which is not text: "
        "UTF-8 cannot encode it"
    )
