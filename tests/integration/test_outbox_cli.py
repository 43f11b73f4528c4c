"""`flask --app web outbox stats|list|retry|cancel|actions|purge`: output and exit codes.

Every test runs on SQLite and on PostgreSQL (the `app` fixture).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import delete, select

from devtools.smtp_server import SMTPServer
from tests.integration.conftest import ADMIN, emails, wait_for_status
from tests.integration.outbox_rows import add_emails, queue_email
from web.extensions import db
from web.models import AdminAction, utcnow


def outbox(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["outbox", *args])


def test_stats_of_an_empty_outbox(app: Flask) -> None:
    result = outbox(app, "stats")
    assert result.exit_code == 0, result.output
    assert result.output.split("\n") == [
        "queued     0",
        "sending    0",
        "retrying   0",
        "sent       0",
        "failed     0",
        "cancelled  0",
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
    assert lines[:6] == [
        "queued     1", "sending    1", "retrying   2", "sent       3", "failed     1",
        "cancelled  0",
    ]  # fmt: skip
    assert lines[6:] == ["scheduled (queued, not yet due): 0", "oldest undelivered: 2 h 5 min"]


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


def test_list_shows_a_long_reason_whole_wrapped_under_its_column(app: Flask) -> None:
    reason = (
        "gave up after 8 attempts: DATA refused: 451 4.7.1 Service unavailable - try again "
        "later; the part that matters comes at the end: client host rejected by policy 17b"
    )
    add_emails(app, status="failed", attempts=8, last_error=reason)
    result = outbox(app, "list")
    assert result.exit_code == 0, result.output
    header, first, *more = result.output.splitlines()
    column = header.index("last error")
    assert len(more) >= 1 and all(line[:column].isspace() for line in more)
    assert " ".join([first[column:], *(line[column:] for line in more)]) == reason


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


def test_purge_deletes_only_old_sent_and_cancelled_emails(app: Flask) -> None:
    long_ago = utcnow() - timedelta(days=10)
    (old_sent,) = add_emails(app, status="sent", created_at=long_ago, sent_at=long_ago)
    (recent_sent,) = add_emails(app, status="sent", sent_at=utcnow() - timedelta(days=2))
    (old_cancelled,) = add_emails(app, status="cancelled", created_at=long_ago, updated_at=long_ago)
    old_failed = add_emails(app, status="failed", created_at=long_ago)
    old_queued = add_emails(app, created_at=long_ago)
    old_retrying = add_emails(app, status="retrying", created_at=long_ago)

    result = outbox(app, "purge", "--older-than", "5")
    assert result.exit_code == 0, result.output
    assert result.output == "deleted 1 sent email and 1 cancelled email older than 5 days\n"
    remaining = {email.id for email in emails(app)}
    assert old_sent not in remaining and old_cancelled not in remaining
    assert remaining == {recent_sent, *old_failed, *old_queued, *old_retrying}

    result = outbox(app, "purge", "--older-than", "1")
    assert result.output == "deleted 1 sent email and 0 cancelled emails older than 1 day\n"
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
    assert lines[0] == "queued     3"
    assert lines[6:] == ["scheduled (queued, not yet due): 2", "oldest undelivered: 7 min"]


def test_stats_with_only_scheduled_emails_have_no_oldest_undelivered(app: Flask) -> None:
    queue_email(app, send_at=LATER, fields={"created_at": utcnow() - timedelta(days=2)})
    lines = outbox(app, "stats").output.splitlines()
    assert lines[0] == "queued     1"
    assert lines[6:] == ["scheduled (queued, not yet due): 1", "oldest undelivered: none"]


def test_a_scheduled_email_that_became_due_is_late_from_its_send_at(
    app: Flask, shift_clock: Callable[[timedelta], None]
) -> None:
    queue_email(app, send_at=datetime.now(UTC) + timedelta(hours=2))
    queue_email(app, send_at=LATER)
    shift_clock(timedelta(hours=2, minutes=12))  # created 2 h 12 min ago, due 12 min ago
    lines = outbox(app, "stats").output.splitlines()
    assert lines[6:] == ["scheduled (queued, not yet due): 1", "oldest undelivered: 12 min"]


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


# --- search, --json, bulk retry, cancel, the record of actions ------------------------------


def _actions(app: Flask) -> list[tuple[str, str, dict[str, object], int]]:
    with app.app_context():
        statement = select(AdminAction).order_by(AdminAction.id)
        return [(a.actor, a.action, a.target, a.count) for a in db.session.scalars(statement)]


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app`, with no recorded actions left from an earlier test."""
    with app.app_context():
        db.session.execute(delete(AdminAction))
        db.session.commit()
    return app


def test_list_searches_with_status_and_priority(app: Flask) -> None:
    ann = add_emails(app, 3, recipients=["Ann Lee <ann@example.com>"])
    failed = add_emails(app, 2, status="failed", recipients=["ann@example.com"], priority="high")
    add_emails(app, 2, status="failed", recipients=["bob@example.com"], priority="high")
    assert list(_list(app, "--query", "ANN@")) == sorted(ann + failed, reverse=True)
    rows = _list(app, "-q", "ann", "--status", "failed", "--priority", "high", "--limit", "1")
    assert list(rows) == [max(failed)]
    assert list(_list(app, "--query", f"#{ann[0]}")) == [ann[0]]
    result = outbox(app, "list", "--query", "nobody", "--priority", "bulk")
    assert result.exit_code == 0
    assert result.output == "no emails match (priority bulk, matching 'nobody')\n"


def test_list_json_gives_every_value_whole_with_iso_times(app: Flask) -> None:
    subject = "A subject " + "that goes on " * 20
    error = "550 5.1.1 <ann@example.com>: " + "x" * 300
    (failed,) = add_emails(
        app,
        status="failed",
        attempts=3,
        subject=subject,
        last_error=error,
        recipients=["Ann <ann@example.com>", "bob@example.com"],
        idempotency_key="order:42",
        created_at=datetime(2026, 11, 29, 21, 55, 50, 123456),
    )
    later = queue_email(app, send_at=LATER, priority="bulk")
    result = outbox(app, "list", "--json")
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.output)
    assert first == {
        "id": later,
        "status": "queued",
        "priority": "bulk",
        "scheduled": True,
        "send_at": LATER_UTC,
        "attempts": 0,
        "recipients": [ADMIN],
        "subject": "[Flasky] Test",
        "idempotency_key": None,
        "last_error": None,
        "created_at": first["created_at"],
        "sent_at": None,
    }
    assert datetime.fromisoformat(first["created_at"]).utcoffset() == timedelta(0)
    assert second["id"] == failed and second["subject"] == subject
    assert second["last_error"] == error
    assert second["recipients"] == ["Ann <ann@example.com>", "bob@example.com"]
    assert second["idempotency_key"] == "order:42"
    assert second["created_at"] == "2026-11-29T21:55:50+00:00"
    assert json.loads(outbox(app, "list", "--json", "--query", "nobody").output) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--priority", "urgent"], "There is no priority 'urgent'"),
        (["--status", "lost"], "There is no status 'lost'"),
        (["--query", "x" * 10_000], "A search is at most 320 characters"),
    ],
)
def test_list_refuses_a_bad_filter_with_a_clear_message(
    app: Flask, args: list[str], message: str
) -> None:
    result = outbox(app, "list", *args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_bulk_retry_asks_first_and_retries_only_the_matching_failed_emails(app: Flask) -> None:
    matching = add_emails(app, 3, status="failed", attempts=8, recipients=["ann@example.com"])
    other = add_emails(app, 2, status="failed", recipients=["bob@example.com"])
    (sent,) = add_emails(app, status="sent", recipients=["ann@example.com"], sent_at=utcnow())
    runner = app.test_cli_runner()

    declined = runner.invoke(args=["outbox", "retry", "--query", "ann"], input="n\n")
    assert declined.exit_code == 1
    assert "Retry 3 emails (failed, matching 'ann')? [y/N]: n" in declined.output
    assert {e.status for e in emails(app) if e.id in matching} == {"failed"}
    assert _actions(app) == []

    accepted = runner.invoke(args=["outbox", "retry", "--query", "ann"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert accepted.output.endswith("3 emails queued again\n")
    by_id = {e.id: e for e in emails(app)}
    assert [(by_id[i].status, by_id[i].attempts) for i in matching] == [("queued", 0)] * 3
    assert [by_id[i].status for i in (*other, sent)] == ["failed", "failed", "sent"]
    ((actor, action, target, count),) = _actions(app)
    assert actor.startswith("cli:") and len(actor) > len("cli:")
    assert (action, target, count) == ("bulk-retry", {"status": "failed", "query": "ann"}, 3)

    result = outbox(app, "retry", "--yes")  # no filter: every failed email, without asking
    assert result.exit_code == 0 and result.output == "2 emails queued again\n"
    assert outbox(app, "retry", "--yes").output == "no emails match (failed): nothing to retry\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["42", "--query", "ann"], "give either an ID or filter options, not both"),
        (["--status", "sent"], "only failed emails are retried, not sent ones"),
        (["--priority", "urgent"], "There is no priority 'urgent'"),
    ],
)
def test_retry_refuses_contradictory_options(app: Flask, args: list[str], message: str) -> None:
    add_emails(app, status="failed")
    result = outbox(app, "retry", "--yes", *args)
    assert result.exit_code == 2 and message in result.output
    assert emails(app)[0].status == "failed" and _actions(app) == []


def test_a_single_retry_is_recorded(app: Flask) -> None:
    (failed,) = add_emails(app, status="failed")
    assert outbox(app, "retry", str(failed)).exit_code == 0
    ((actor, *rest),) = _actions(app)
    assert actor.startswith("cli:") and rest == ["retry", {"id": failed}, 1]
    assert outbox(app, "retry", str(2**31)).output.endswith("there is no email 2147483648\n")


def test_cancel_stops_a_scheduled_email_and_refuses_any_other(app: Flask) -> None:
    later = queue_email(app, send_at=LATER)
    (due,) = add_emails(app)
    (sent,) = add_emails(app, status="sent", sent_at=utcnow())
    result = outbox(app, "cancel", str(later))
    assert result.exit_code == 0, result.output
    assert result.output == f"email {later} is cancelled: it will not be sent\n"
    assert {e.id: e.status for e in emails(app)}[later] == "cancelled"
    assert outbox(app, "list", "--status", "cancelled").output.splitlines()[1].split()[:2] == [
        str(later),
        "cancelled",
    ]
    for email_id, message in (
        (later, f"Email {later} is cancelled, not scheduled: nothing to cancel."),
        (due, f"Email {due} is queued, not scheduled: nothing to cancel."),
        (sent, f"Email {sent} is sent, not scheduled: nothing to cancel."),
        (424242, "there is no email 424242"),
        (2**31, "there is no email 2147483648"),
    ):
        refused = outbox(app, "cancel", str(email_id))
        assert refused.exit_code == 1 and message in refused.output
    ((actor, *rest),) = _actions(app)
    assert actor.startswith("cli:") and rest == ["cancel", {"id": later}, 1]
    assert outbox(app, "stats").output.splitlines()[5] == "cancelled  1"


def test_actions_lists_the_record_newest_first(app: Flask) -> None:
    assert outbox(app, "actions").output == "no actions recorded\n"
    later = queue_email(app, send_at=LATER)
    add_emails(app, 2, status="failed", priority="high")
    outbox(app, "cancel", str(later))
    outbox(app, "retry", "--yes", "--priority", "high")
    header, *rows = outbox(app, "actions").output.splitlines()
    assert header.split() == ["id", "at", "actor", "action", "emails", "target"]
    cells = [re.split(r"\s{2,}", row.strip()) for row in rows]
    assert [(c[3], c[4], c[5]) for c in cells] == [
        ("bulk-retry", "2", "failed, priority high"),
        ("cancel", "1", f"email {later}"),
    ]
    assert datetime.fromisoformat(cells[0][1]).utcoffset() == timedelta(0)
    newest, oldest = json.loads(outbox(app, "actions", "--json").output)
    assert (newest["action"], newest["target"], newest["count"]) == (
        "bulk-retry",
        {"status": "failed", "priority": "high"},
        2,
    )
    assert oldest["target"] == {"id": later} and oldest["actor"].startswith("cli:")
    assert len(json.loads(outbox(app, "actions", "--json", "--limit", "1").output)) == 1
