"""The worker's SMTP session: reused across emails, checked after idling, recycled, bounded."""

from __future__ import annotations

import socket
import time
from datetime import datetime

import pytest
from flask import Flask

from tests.conftest import ADMIN, wait_for_status
from tests.smtp_server import SMTPTestServer
from web.extensions import db
from web.outbox.api import send_email
from worker.claims import ClaimedEmail
from worker.message import build_message, message_bytes


def _queue(app: Flask, count: int, prefix: str = "User") -> None:
    with app.app_context():
        for n in range(count):
            send_email(ADMIN, f"Hello {n}", "mail/new_user", name=f"{prefix} {n}")
            db.session.commit()


def test_one_connection_carries_many_emails(
    app: Flask, celery_worker: object, smtp_server: SMTPTestServer
) -> None:
    _queue(app, 1)
    wait_for_status(app, "sent", 1)
    _queue(app, 5, "More")
    wait_for_status(app, "sent", 6)
    # The in-thread worker has two threads, each with its own connection.
    assert smtp_server.connections <= 2
    assert len(smtp_server.messages) == 6


def test_connection_is_recycled_after_the_configured_number_of_messages(
    app: Flask, celery_worker: object, smtp_server: SMTPTestServer
) -> None:
    app.config["MAIL_MAX_MESSAGES_PER_CONNECTION"] = 1
    for n in range(3):
        _queue(app, 1, f"Batch{n}")
        wait_for_status(app, "sent", n + 1)
    assert smtp_server.connections == 3


def test_a_connection_the_server_dropped_is_replaced_without_a_failed_attempt(
    app: Flask, celery_worker: object, smtp_server: SMTPTestServer
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
    app: Flask, celery_worker: object, smtp_server: SMTPTestServer
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


def _claimed(name: str = "张伟 <b>") -> ClaimedEmail:
    return ClaimedEmail(
        id=1,
        attempts=1,
        recipients=[ADMIN],
        sender="Flasky Admin <flasky@example.com>",
        subject="[Flasky] 新用户 New User",
        text_body=f"A new user: {name}\n",
        html_body=f"<p>A new user: <b>{name}</b></p>",
        message_id="<abc@example.com>",
        created_at=datetime(2026, 11, 26, 12, 0, 0),
        cc=None,
        bcc=None,
        reply_to=None,
        send_at=None,
        attachment_count=0,
    )


def test_message_bytes_carry_the_same_message_as_flask_mails_own(app: Flask) -> None:
    import email
    import email.policy

    with app.app_context():
        message = build_message(_claimed())
        raw = message_bytes(message)
        ours = email.message_from_bytes(raw, policy=email.policy.default)
        theirs = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    for header in ("Subject", "From", "To", "Date", "Message-ID"):
        assert ours[header] == theirs[header]
    for kind in ("plain", "html"):
        assert ours.get_body((kind,)).get_content() == theirs.get_body((kind,)).get_content()
    assert ours["Message-ID"] == "<abc@example.com>"
    assert ours["Date"] == "Thu, 26 Nov 2026 12:00:00 +0000"
    assert b"\r\n" in raw and b"\n\n" not in raw


def test_building_messages_does_no_host_name_lookup(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    real_getfqdn = socket.getfqdn
    monkeypatch.setattr(socket, "getfqdn", lambda *a: lookups.append("x") or real_getfqdn(*a))
    with app.app_context():
        for _ in range(10):
            message_bytes(build_message(_claimed()))
    assert lookups == []
