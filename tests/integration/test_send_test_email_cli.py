"""`flask --app web send-test-email ADDRESS --cc --attach --at --priority`, end to end.

The command queues through the outbox; the real worker (`celery_worker`) delivers to the real
SMTP server, whose received bytes and envelope are checked. Bad options exit with status 2 and
a message naming the option, before anything is written. Every test runs on SQLite and on
PostgreSQL (the `app` fixture).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from click.testing import Result
from flask import Flask

from celeryconfig import PRIORITY_QUEUES
from devtools.smtp_server import SMTPServer
from tests.integration.conftest import emails, wait_for_status
from tests.integration.queued import queued_ids
from web.extensions import db
from web.models import Attachment, Email

TO = "you@example.com"


def send_test_email(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["send-test-email", *args])


def _queued_id(result: Result) -> int:
    """The id the command printed ("queued test email 7 to ...")."""
    assert result.exit_code == 0, result.output
    assert result.output.startswith("queued test email "), result.output
    return int(result.output.split()[3])


def _published(redis_url: str) -> dict[str, list[int]]:
    """The email ids waiting on each priority queue in Redis (what a worker would consume)."""
    client = redis.Redis.from_url(redis_url)
    return {queue: ids for queue in PRIORITY_QUEUES.values() if (ids := queued_ids(client, queue))}


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


# --- --cc -----------------------------------------------------------------------------------


def test_cc_addresses_are_in_the_cc_header_and_the_envelope(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    result = send_test_email(
        app, TO, "--cc", "ann@example.com", "--cc", "Bob Stone <bob@example.com>"
    )
    email_id = _queued_id(result)
    (message,) = smtp_server.wait_for_messages(1)
    parsed = message.parsed()
    assert getaddresses([str(parsed["To"])]) == [("", TO)]
    # Sorted: Flask-Mail joins the Cc addresses through a set(), in no fixed order.
    assert sorted(getaddresses([str(parsed["Cc"])])) == [
        ("", "ann@example.com"),
        ("Bob Stone", "bob@example.com"),
    ]
    assert sorted(message.rcpt_tos) == ["ann@example.com", "bob@example.com", TO]
    (row,) = wait_for_status(app, "sent")
    assert row.id == email_id
    assert row.cc == ["ann@example.com", "Bob Stone <bob@example.com>"]


# --- --attach -------------------------------------------------------------------------------


def test_attached_files_arrive_with_their_bytes_and_names(
    app: Flask, celery_worker: object, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    report = tmp_path / "报告.pdf"
    report.write_bytes(b"%PDF-1.7\n" + os.urandom(48 * 1024))  # any byte, NULs and CRs too
    notes = tmp_path / "notes.txt"
    notes.write_bytes("line one\r\nline two\n张伟\n".encode())

    _queued_id(send_test_email(app, TO, "--attach", str(report), "--attach", str(notes)))
    (message,) = smtp_server.wait_for_messages(1)
    attachments = list(message.parsed().iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [
        ("报告.pdf", "application/pdf"),
        ("notes.txt", "text/plain"),
    ]
    assert attachments[0].get_payload(decode=True) == report.read_bytes()
    assert attachments[1].get_payload(decode=True) == notes.read_bytes()
    # RFC 2231 for the non-ASCII name, with the charset every mail reader knows.
    assert b"filename*=utf-8''" + quote("报告.pdf").encode() in message.raw
    assert b'filename="notes.txt"' in message.raw

    (row,) = wait_for_status(app, "sent")
    assert row.attachment_count == 2


# --- --priority -----------------------------------------------------------------------------


def test_high_priority_is_published_on_the_high_queue_and_delivered(
    app: Flask, redis_url: str, smtp_server: SMTPServer, request: pytest.FixtureRequest
) -> None:
    """No worker at first, so the published message can be seen on its queue."""
    email_id = _queued_id(send_test_email(app, TO, "--priority", "high"))
    assert _published(redis_url) == {"flasky.high": [email_id]}
    (row,) = emails(app)
    assert (row.id, row.priority, row.status) == (email_id, "high", "queued")

    request.getfixturevalue("celery_worker")  # now a worker consumes every queue
    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [TO]
    (row,) = wait_for_status(app, "sent")
    assert row.priority == "high" and message.message_id == row.message_id


def test_the_default_priority_is_normal(app: Flask, redis_url: str) -> None:
    result = send_test_email(app, TO)
    email_id = _queued_id(result)
    assert result.output == f"queued test email {email_id} to {TO} (normal)\n"
    assert _published(redis_url) == {"flasky.normal": [email_id]}
    assert emails(app)[0].priority == "normal"


# --- --at -----------------------------------------------------------------------------------


def test_a_future_time_leaves_the_email_queued_and_unpublished(
    app: Flask, redis_url: str, smtp_server: SMTPServer, request: pytest.FixtureRequest
) -> None:
    # This time tomorrow, written in UTC+05:30; stored as naive UTC.
    at = (datetime.now(UTC) + timedelta(days=1)).astimezone(timezone(timedelta(hours=5.5)))
    result = send_test_email(app, TO, "--at", at.isoformat())
    email_id = _queued_id(result)
    assert result.output == (
        f"queued test email {email_id} to {TO} (normal, not before {at.isoformat()})\n"
    )
    (row,) = emails(app)
    assert (row.status, row.attempts) == ("queued", 0)
    assert row.send_at == row.next_attempt_at == _naive_utc(at)
    assert _published(redis_url) == {}  # the sweeper publishes it once due, not before

    # A running worker sends an email queued after it, and still not the scheduled one.
    request.getfixturevalue("celery_worker")
    now_id = _queued_id(send_test_email(app, "now@example.com"))
    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == ["now@example.com"]
    (sent,) = wait_for_status(app, "sent")
    assert sent.id == now_id
    scheduled = next(e for e in emails(app) if e.id == email_id)
    assert (scheduled.status, scheduled.attempts, scheduled.send_at) == ("queued", 0, row.send_at)
    assert len(smtp_server.messages) == 1


def test_a_past_time_sends_at_once(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    email_id = _queued_id(send_test_email(app, TO, "--at", an_hour_ago))
    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [TO]
    (row,) = wait_for_status(app, "sent")
    assert row.id == email_id and row.send_at is None


# --- bad options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option", "reason"),
    [
        (["--at", "2099-01-02T08:30:00"], "--at", "has no UTC offset"),
        (["--at", "2099-01-02"], "--at", "has no UTC offset"),
        (["--at", "next tuesday"], "--at", "is not an ISO 8601 time"),
        (["--at", "2099-01-02T08:30:00+25:00"], "--at", "is not an ISO 8601 time"),
        (["--cc", "not-an-address"], "--cc", "not a valid email address"),
        (["--cc", "ann@example.com", "--cc", "bob@"], "--cc", "not a valid email address"),
        (["--cc", "a@example.com\r\nBcc: evil@example.com"], "--cc", "control characters"),
        (["--attach", "{tmp}/missing.pdf"], "'--attach'", "does not exist"),
        (["--attach", "{tmp}"], "'--attach'", "is a directory"),
        (["--priority", "urgent"], "'--priority'", "'urgent' is not one of"),
    ],
)
def test_a_bad_option_exits_2_naming_it_and_writes_nothing(
    app: Flask, redis_url: str, tmp_path: Path, args: list[str], option: str, reason: str
) -> None:
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    attachment = tmp_path / "ok.pdf"
    attachment.write_bytes(b"%PDF-1.7\n")
    result = send_test_email(app, TO, "--attach", str(attachment), *args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}" in result.output
    assert reason in result.output
    assert "Traceback" not in result.output
    assert emails(app) == [] and _attachment_rows(app) == 0
    assert _published(redis_url) == {}


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_at_the_ends_of_the_calendar_is_refused_with_exit_2(app: Flask, at: str) -> None:
    result = send_test_email(app, TO, "--at", at)
    assert result.exit_code == 2, result.output
    assert "--at" in result.output
    assert emails(app) == []


def _attachment_rows(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Attachment)) or 0


def test_the_bad_option_messages_read_well(app: Flask) -> None:
    """What a person sees in the terminal, in full, for the two --at mistakes."""
    naive = send_test_email(app, TO, "--at", "2099-01-02T08:30:00")
    assert naive.output.endswith(
        "Error: Invalid value for --at: '2099-01-02T08:30:00' has no UTC offset: add one, "
        "e.g. 2099-01-02T08:30:00+00:00 or 2099-01-02T08:30:00Z\n"
    )
    nonsense = send_test_email(app, TO, "--at", "soon")
    assert nonsense.output.endswith(
        "Error: Invalid value for --at: 'soon' is not an ISO 8601 time such as "
        "2026-12-01T08:00:00+01:00\n"
    )
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Email)) == 0
