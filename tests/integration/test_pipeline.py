"""The whole pipeline against real parts: form → outbox → Redis → Celery worker → SMTP server.

Every test here runs on SQLite and on PostgreSQL (see `database_url` in conftest.py).
"""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from devtools.smtp_server import ReceivedMessage, SMTPServer
from tests.forms import post_name
from tests.integration.conftest import ADMIN, emails, wait_for_status
from web.extensions import db
from web.models import User


def _parts(message: ReceivedMessage) -> dict[str, str]:
    """The text/plain and text/html bodies of the multipart/alternative part."""
    parsed = message.parsed()
    alternatives = [p for p in parsed.walk() if p.get_content_type() == "multipart/alternative"]
    assert len(alternatives) == 1, "expected one multipart/alternative part"
    return {part.get_content_type(): part.get_content() for part in alternatives[0].iter_parts()}


def test_new_name_sends_one_email_to_the_admin(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    response = post_name(client, "  Alice  ")
    assert response.status_code == 302 and response.location == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Hello, Alice!" in page and "Pleased to meet you!" in page

    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [ADMIN]
    parsed = message.parsed()
    assert parsed["Subject"] == "[Flasky] New User"
    assert parsed["From"] == "Flasky Admin <flasky@example.com>"
    assert parsed["To"] == ADMIN
    assert parsed["Date"]
    bodies = _parts(message)
    assert set(bodies) == {"text/plain", "text/html"}
    assert "Alice" in bodies["text/plain"] and "Alice" in bodies["text/html"]

    (row,) = wait_for_status(app, "sent")
    assert row.attempts == 1
    assert row.smtp_reply.startswith("250")
    assert row.sent_at is not None and row.lease_expires_at is None
    assert message.message_id == row.message_id
    with app.app_context():
        assert db.session.scalars(db.select(User.username)).all() == ["Alice"]


def test_known_name_is_greeted_and_sends_nothing(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    post_name(client, "Bob")
    smtp_server.wait_for_messages(1)
    response = post_name(client, "Bob")
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Hello, Bob!" in page and "Happy to see you again!" in page
    time.sleep(1.0)  # give a wrongly queued second email the time to arrive
    assert len(smtp_server.messages) == 1
    assert len(emails(app)) == 1


def test_name_is_remembered_in_the_session(client: FlaskClient, smtp_server: SMTPServer) -> None:
    post_name(client, "Carol")
    assert "Hello, Carol!" in client.get("/").get_data(as_text=True)
    assert "Hello, Stranger!" in client.application.test_client().get("/").get_data(as_text=True)


def test_no_admin_configured_means_no_email(app: Flask, client: FlaskClient) -> None:
    app.config["FLASKY_ADMIN"] = None
    post_name(client, "Dave")
    assert "Pleased to meet you!" in client.get("/").get_data(as_text=True)
    assert emails(app) == []


def test_451_twice_then_250_is_delivered_once_after_three_attempts(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.reply_at("eom", "451 4.3.0 Temporary local problem", times=2)
    post_name(client, "Erin")
    (row,) = wait_for_status(app, "sent")
    assert row.attempts == 3
    assert len(smtp_server.wait_for_messages(1)) == 1
    time.sleep(0.5)
    assert len(smtp_server.messages) == 1


def test_greylisting_450_at_rcpt_then_accepted_is_delivered_once(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.reply_at("rcpt", "450 4.2.0 Greylisted, please try again later")
    post_name(client, "Frank")
    (row,) = wait_for_status(app, "sent")
    assert row.attempts == 2
    assert len(smtp_server.messages) == 1


def test_550_fails_at_once_with_the_reason(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.reply_at("eom", "550 5.7.1 Message rejected as spam")
    post_name(client, "Grace")
    (row,) = wait_for_status(app, "failed")
    assert row.attempts == 1
    assert "550" in row.last_error and "rejected as spam" in row.last_error
    assert smtp_server.messages == []


def test_every_recipient_refused_with_5xx_fails_at_once(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.refuse_recipient(ADMIN, "550 5.1.1 No such user")
    post_name(client, "Heidi")
    (row,) = wait_for_status(app, "failed")
    assert row.attempts == 1 and "550 5.1.1 No such user" in row.last_error


def test_connection_dropped_mid_session_is_retried_and_delivered_once(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.hang_up_at("data")
    post_name(client, "Ivan")
    (row,) = wait_for_status(app, "sent")
    assert row.attempts == 2
    assert len(smtp_server.messages) == 1


def test_smtp_server_down_then_up_is_delivered(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.stop()
    post_name(client, "Judy")
    (row,) = wait_for_status(app, "retrying")
    assert f"connection to 127.0.0.1:{smtp_server.port} failed" in row.last_error
    smtp_server.start()
    (row,) = wait_for_status(app, "sent", timeout=20)
    assert row.attempts >= 2
    assert len(smtp_server.wait_for_messages(1)) == 1


def test_partial_recipient_refusal_is_recorded_on_the_row(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    from web.outbox.api import send_email

    smtp_server.refuse_recipient("gone@example.com", "550 5.1.1 Mailbox unavailable")
    with app.app_context():
        send_email([ADMIN, "gone@example.com"], "Hello", "mail/new_user", name="Ken")
        db.session.commit()
    (row,) = wait_for_status(app, "sent")
    assert row.refused_recipients == {"gone@example.com": "550 5.1.1 Mailbox unavailable"}
    assert "gone@example.com" in row.last_error
    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [ADMIN]


def test_send_test_email_cli_queues_through_the_outbox(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    result = app.test_cli_runner().invoke(args=["send-test-email", "you@example.com"])
    assert result.exit_code == 0, result.output
    (row,) = wait_for_status(app, "sent")
    assert f"queued test email {row.id} to you@example.com (normal)" in result.output
    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == ["you@example.com"]
    assert message.parsed()["Subject"] == "[Flasky] Test email"


def test_send_test_email_cli_refuses_a_bad_address(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["send-test-email", "not-an-address"])
    assert result.exit_code == 2
    assert "not a valid email address" in result.output
    assert emails(app) == []
