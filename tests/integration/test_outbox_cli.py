"""`flask --app web outbox stats|list|retry|purge`: output and exit codes.

Every test runs on SQLite and on PostgreSQL (the `app` fixture).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import Result
from flask import Flask

from devtools.smtp_server import SMTPServer
from tests.integration.conftest import ADMIN, emails, wait_for_status
from tests.integration.outbox_rows import add_emails, queue_email
from web.models import utcnow


def outbox(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["outbox", *args])


def test_stats_of_an_empty_outbox(app: Flask) -> None:
    result = outbox(app, "stats")
    assert result.exit_code == 0, result.output
    assert result.output.split("\n") == [
        "queued    0",
        "sending   0",
        "retrying  0",
        "sent      0",
        "failed    0",
        "scheduled (queued, not yet due): 0",
        "oldest undelivered: none",
        "",
    ]


def test_stats_count_every_status_and_give_the_oldest_undelivered_age(app: Flask) -> None:
    add_emails(app, created_at=utcnow() - timedelta(hours=2, minutes=5, seconds=3))
    add_emails(app, 2, status="retrying", attempts=1)
    add_emails(app, status="sending", attempts=1, lease_expires_at=utcnow())
    add_emails(app, 3, status="sent", sent_at=utcnow())
    add_emails(app, status="failed")
    result = outbox(app, "stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:5] == ["queued    1", "sending   1", "retrying  2", "sent      3", "failed    1"]
    assert lines[5:] == ["scheduled (queued, not yet due): 0", "oldest undelivered: 2 h 5 min"]


def test_list_prints_a_table_newest_first(app: Flask) -> None:
    queued = add_emails(app, 2)
    (failed,) = add_emails(app, status="failed", attempts=3, last_error="550 5.1.1\nno such user")
    result = outbox(app, "list")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == [
        "id", "status", "priority", "scheduled", "for", "attempts", "recipient", "subject", "last",
        "error",
    ]  # fmt: skip
    assert [int(row.split()[0]) for row in rows] == [failed, *reversed(queued)]
    assert rows[0].split() == [
        str(failed), "failed", "normal", "3", ADMIN, "[Flasky]", "Test", "0", "550", "5.1.1", "no",
        "such", "user",
    ]  # fmt: skip


def test_list_filters_by_status_and_limits_the_count(app: Flask) -> None:
    add_emails(app, 3)
    failed = add_emails(app, 3, status="failed")
    result = outbox(app, "list", "--status", "failed", "--limit", "2")
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()[1:]
    assert [int(row.split()[0]) for row in rows] == sorted(failed, reverse=True)[:2]
    assert outbox(app, "list", "--status", "sent").output == "no emails with status sent\n"


@pytest.mark.parametrize("args", [["--status", "lost"], ["--limit", "0"], ["--limit", "x"]])
def test_list_refuses_bad_options(app: Flask, args: list[str]) -> None:
    result = outbox(app, "list", *args)
    assert result.exit_code == 2 and "Invalid value" in result.output


def test_retry_sends_a_failed_email_again(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    (email_id,) = add_emails(app, status="failed", attempts=8, last_error="421 too busy")
    result = outbox(app, "retry", str(email_id))
    assert result.exit_code == 0, result.output
    assert result.output == f"email {email_id} is queued again\n"
    (email,) = wait_for_status(app, "sent")
    assert email.attempts == 1
    (message,) = smtp_server.wait_for_messages(1)
    assert message.message_id == email.message_id


@pytest.mark.parametrize("status", ["sent", "queued", "sending", "retrying"])
def test_retry_refuses_an_email_that_has_not_failed(app: Flask, status: str) -> None:
    (email_id,) = add_emails(app, status=status, attempts=1)
    result = outbox(app, "retry", str(email_id))
    assert result.exit_code == 1
    assert f"email {email_id} is {status}, not failed: nothing to retry" in result.output
    (email,) = emails(app)
    assert (email.status, email.attempts) == (status, 1)


def test_retry_of_an_unknown_email_fails(app: Flask) -> None:
    result = outbox(app, "retry", "424242")
    assert result.exit_code == 1 and "there is no email 424242" in result.output


def test_purge_deletes_only_old_sent_emails(app: Flask) -> None:
    long_ago = utcnow() - timedelta(days=10)
    (old_sent,) = add_emails(app, status="sent", created_at=long_ago, sent_at=long_ago)
    (recent_sent,) = add_emails(app, status="sent", sent_at=utcnow() - timedelta(days=2))
    old_failed = add_emails(app, status="failed", created_at=long_ago)
    old_queued = add_emails(app, created_at=long_ago)
    old_retrying = add_emails(app, status="retrying", created_at=long_ago)

    result = outbox(app, "purge", "--older-than", "5")
    assert result.exit_code == 0, result.output
    assert result.output == "deleted 1 sent email older than 5 days\n"
    remaining = {email.id for email in emails(app)}
    assert old_sent not in remaining
    assert remaining == {recent_sent, *old_failed, *old_queued, *old_retrying}

    result = outbox(app, "purge", "--older-than", "1")
    assert result.output == "deleted 1 sent email older than 1 day\n"
    assert outbox(app, "purge", "--older-than", "1").output.startswith("deleted 0 sent emails")


@pytest.mark.parametrize("args", [["--older-than", "0"], ["--older-than", "-3"], []])
def test_purge_needs_at_least_one_day(app: Flask, args: list[str]) -> None:
    add_emails(app, status="sent", sent_at=utcnow())
    result = outbox(app, "purge", *args)
    assert result.exit_code == 2
    assert "--older-than" in result.output
    assert len(emails(app)) == 1


# --- scheduled emails and priority ------------------------------------------------------------

LATER = datetime(2099, 1, 2, 10, 30, tzinfo=timezone(timedelta(hours=2)))
LATER_UTC = "2099-01-02T08:30:00+00:00"  # ISO 8601 with its offset, as `--at` accepts it


def _list(app: Flask, *args: str) -> dict[int, list[str]]:
    """`outbox list ARGS`: each row's cells (split on runs of 2+ spaces), by id."""
    result = outbox(app, "list", *args)
    assert result.exit_code == 0, result.output
    header, *rows = [re.split(r"\s{2,}", line.strip()) for line in result.output.splitlines()]
    assert header[:4] == ["id", "status", "priority", "scheduled for"]
    return {int(cells[0]): cells for cells in rows}


def test_stats_count_scheduled_emails_apart_and_not_as_late(app: Flask) -> None:
    add_emails(app, created_at=utcnow() - timedelta(minutes=7, seconds=5))
    # Queued a week ago for later: old, but not late.
    queue_email(app, send_at=LATER, fields={"created_at": utcnow() - timedelta(days=7)})
    queue_email(app, send_at=LATER, priority="bulk")
    result = outbox(app, "stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "queued    3"
    assert lines[5:] == ["scheduled (queued, not yet due): 2", "oldest undelivered: 7 min"]


def test_stats_with_only_scheduled_emails_have_no_oldest_undelivered(app: Flask) -> None:
    queue_email(app, send_at=LATER, fields={"created_at": utcnow() - timedelta(days=2)})
    lines = outbox(app, "stats").output.splitlines()
    assert lines[0] == "queued    1"
    assert lines[5:] == ["scheduled (queued, not yet due): 1", "oldest undelivered: none"]


def test_a_scheduled_email_that_became_due_is_late_from_its_send_at(
    app: Flask, shift_clock: Callable[[timedelta], None]
) -> None:
    queue_email(app, send_at=datetime.now(UTC) + timedelta(hours=2))
    queue_email(app, send_at=LATER)
    shift_clock(timedelta(hours=2, minutes=12))  # created 2 h 12 min ago, due 12 min ago
    lines = outbox(app, "stats").output.splitlines()
    assert lines[5:] == ["scheduled (queued, not yet due): 1", "oldest undelivered: 12 min"]


def test_list_shows_priority_and_when_a_scheduled_email_is_due(
    app: Flask, shift_clock: Callable[[timedelta], None]
) -> None:
    high = queue_email(app, priority="high")
    later = queue_email(app, priority="bulk", send_at=LATER)
    due = queue_email(app, send_at=datetime.now(UTC) + timedelta(minutes=30))
    shift_clock(timedelta(hours=1))  # `due` is due: queued, no longer scheduled
    rows = _list(app)
    assert list(rows) == [due, later, high]
    assert rows[high][:4] == [str(high), "queued", "high", "0"]
    assert rows[later][:5] == [str(later), "queued", "bulk", LATER_UTC, "0"]
    assert rows[due][:4] == [str(due), "queued", "normal", "0"]


def test_list_of_the_scheduled_emails_only(
    app: Flask, shift_clock: Callable[[timedelta], None]
) -> None:
    add_emails(app)
    add_emails(app, status="failed")
    queue_email(app, send_at=datetime.now(UTC) + timedelta(minutes=30))
    later = [queue_email(app, send_at=LATER, priority="bulk") for _ in range(3)]
    shift_clock(timedelta(hours=1))
    rows = _list(app, "--status", "scheduled", "--limit", "2")
    assert list(rows) == sorted(later, reverse=True)[:2]
    assert all(cells[3] == LATER_UTC for cells in rows.values())
    assert len(_list(app, "--status", "queued")) == 5  # "queued" still has every queued email


def test_list_of_the_scheduled_emails_when_there_are_none(app: Flask) -> None:
    add_emails(app)
    result = outbox(app, "list", "--status", "scheduled")
    assert result.exit_code == 0 and result.output == "no emails scheduled for later\n"
