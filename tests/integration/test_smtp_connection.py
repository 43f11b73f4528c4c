"""The worker's SMTP session: reused across emails, checked after idling, recycled, bounded."""

from __future__ import annotations

import time

from flask import Flask

from devtools.smtp_server import SMTPServer
from tests.integration.conftest import ADMIN, wait_for_status
from web.extensions import db
from web.outbox.api import send_email


def _queue(app: Flask, count: int, prefix: str = "User") -> None:
    with app.app_context():
        for n in range(count):
            send_email(ADMIN, f"Hello {n}", "mail/new_user", name=f"{prefix} {n}")
            db.session.commit()


def test_one_connection_carries_many_emails(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    _queue(app, 1)
    wait_for_status(app, "sent", 1)
    _queue(app, 5, "More")
    wait_for_status(app, "sent", 6)
    # The in-thread worker has two threads, each with its own connection.
    assert smtp_server.connections <= 2
    assert len(smtp_server.messages) == 6


def test_connection_is_recycled_after_the_configured_number_of_messages(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    app.config["MAIL_MAX_MESSAGES_PER_CONNECTION"] = 1
    for n in range(3):
        _queue(app, 1, f"Batch{n}")
        wait_for_status(app, "sent", n + 1)
    assert smtp_server.connections == 3


def test_a_connection_the_server_dropped_is_replaced_without_a_failed_attempt(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    app.config["MAIL_IDLE_CHECK_SECONDS"] = 0.0  # check the connection before every message
    _queue(app, 1)
    wait_for_status(app, "sent", 1)
    smtp_server.stop()  # drops the open connection
    smtp_server.start()
    _queue(app, 1, "After")
    rows = wait_for_status(app, "sent", 2)
    assert [row.attempts for row in rows] == [1, 1]
    assert len(smtp_server.messages) == 2


def test_a_server_slower_than_the_time_budget_is_cut_off_and_retried(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    """A wait shorter than MAIL_TIMEOUT, but past the delivery's budget, is cut off."""
    app.config["MAIL_TIMEOUT"] = 5.0
    app.config["CELERY"]["task_soft_time_limit"] = 2  # budget: 1.6 s
    smtp_server.hang_at("rcpt")
    started = time.monotonic()
    _queue(app, 1)
    (row,) = wait_for_status(app, "retrying")
    assert time.monotonic() - started < 3.0
    assert "timed out" in row.last_error
    (row,) = wait_for_status(app, "sent")
    assert row.attempts >= 2
    assert len(smtp_server.messages) == 1


def test_a_relay_slower_than_mail_timeout_after_the_final_dot_is_waited_for(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    """The reply to the final "." has MAIL_DATA_TIMEOUT, even past the budget: giving up
    there would send the message again although the server may have taken it."""
    app.config["MAIL_TIMEOUT"] = 0.5
    app.config["MAIL_DATA_TIMEOUT"] = 4.0
    app.config["CELERY"]["task_soft_time_limit"] = 2  # budget: 1.6 s
    smtp_server.delay_per_message = 2.0
    _queue(app, 1)
    (row,) = wait_for_status(app, "sent", timeout=10)
    assert row.attempts == 1 and len(smtp_server.messages) == 1


def test_a_relay_slower_than_mail_data_timeout_is_retried(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    app.config["MAIL_DATA_TIMEOUT"] = 1.0
    smtp_server.delay_per_message = 3.0
    _queue(app, 1)
    (row,) = wait_for_status(app, "retrying")
    assert "timed out" in row.last_error
    smtp_server.delay_per_message = 0.0
    (row,) = wait_for_status(app, "sent")
    assert row.attempts >= 2


def test_a_message_over_the_servers_size_fails_for_good_before_mail_from(
    app: Flask, celery_worker: object
) -> None:
    with SMTPServer(size_limit=4000) as server:
        app.config["MAIL_PORT"] = server.port
        with app.app_context():
            big = [("a.bin", "application/octet-stream", bytes(3000))]
            send_email(ADMIN, "Big", "mail/test_email", attachments=big)
            send_email(ADMIN, "Small", "mail/test_email")
            db.session.commit()
        failed, sent = wait_for_status(app, "failed")[0], wait_for_status(app, "sent")[0]
        assert [message.parsed()["Subject"] for message in server.messages] == [sent.subject]
    assert failed.attempts == 1
    # Refused by flasky itself, from the SIZE in EHLO, not by the server's 552 after MAIL.
    assert "and the server takes at most 4,000 (its SIZE)" in failed.last_error
