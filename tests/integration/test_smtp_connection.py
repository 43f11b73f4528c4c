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
    """Each reply comes within MAIL_TIMEOUT, but the whole delivery would exceed its budget."""
    app.config["MAIL_TIMEOUT"] = 5.0
    app.config["CELERY"]["task_soft_time_limit"] = 2  # budget: 1.6 s
    smtp_server.delay_per_message = 3.0
    started = time.monotonic()
    _queue(app, 1)
    (row,) = wait_for_status(app, "retrying")
    assert time.monotonic() - started < 3.0
    assert "timed out" in row.last_error
    smtp_server.delay_per_message = 0.0
    (row,) = wait_for_status(app, "sent")
    assert row.attempts >= 2
    assert len(smtp_server.messages) == 1
