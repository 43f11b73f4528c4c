"""web/outbox/actions.py: retry, bulk retry and cancel, each a conditional UPDATE recorded as
an AdminAction in the same transaction; what is published after the commit.

On SQLite in memory; the dashboard and `flask outbox` do the same on SQLite and PostgreSQL,
with a real worker and sweeper, in tests/integration/test_admin_actions.py and
test_outbox_cli.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.unit.outbox_rows import add_row
from web.extensions import db
from web.models import AdminAction, Email, utcnow
from web.outbox import actions, api
from web.outbox.search import MAX_ID, EmailFilter

ACTOR = "admin:operator"


@pytest.fixture
def after_commit(app_context: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """What the commit hook publishes: ("publish", [(id, priority)]) and "sweep" entries."""
    calls: list[object] = []
    monkeypatch.setattr(api, "publish", lambda emails: calls.append(("publish", list(emails))))
    monkeypatch.setattr(api, "_ask_for_a_sweep", lambda: calls.append("sweep"))
    yield calls


def row(email_id: int) -> Email:
    db.session.expire_all()
    return db.session.get(Email, email_id)


def recorded() -> list[tuple[str, str, dict[str, object], int]]:
    statement = select(AdminAction).order_by(AdminAction.id)
    return [(a.actor, a.action, a.target, a.count) for a in db.session.scalars(statement)]


def test_requeue_starts_a_failed_email_over_and_nothing_else(after_commit: list[object]) -> None:
    failed = add_row(status="failed", attempts=8, last_error="550 no such user", priority="high")
    sent = add_row(status="sent", attempts=1)
    assert actions.requeue(failed, actor=ACTOR) is True
    assert actions.requeue(sent, actor=ACTOR) is False
    assert actions.requeue(12345, actor=ACTOR) is False
    assert actions.requeue(MAX_ID + 1, actor=ACTOR) is False
    db.session.commit()
    email = row(failed)
    assert (email.status, email.attempts, email.lease_expires_at) == ("queued", 0, None)
    assert email.last_error == "550 no such user"  # kept until the next attempt replaces it
    assert (row(sent).status, row(sent).attempts) == ("sent", 1)
    assert after_commit == [("publish", [(failed, "high")])]
    assert recorded() == [(ACTOR, "retry", {"id": failed}, 1)]


def test_a_rolled_back_retry_leaves_no_record_and_publishes_nothing(
    after_commit: list[object],
) -> None:
    failed = add_row(status="failed")
    db.session.commit()
    assert actions.requeue(failed, actor=ACTOR)
    db.session.rollback()
    assert row(failed).status == "failed"
    assert recorded() == [] and after_commit == []


def test_bulk_retry_changes_only_the_failed_rows_the_filter_matches(
    after_commit: list[object],
) -> None:
    before = utcnow() - timedelta(minutes=1)
    match = [
        add_row(status="failed", recipients=["ann@example.com"], updated_at=before)
        for _ in range(3)
    ]
    other_recipient = add_row(status="failed", recipients=["bob@example.com"], updated_at=before)
    other_priority = add_row(
        status="failed", recipients=["ann@example.com"], priority="bulk", updated_at=before
    )
    not_failed = add_row(status="sent", recipients=["ann@example.com"], updated_at=before)
    db.session.commit()

    email_filter = EmailFilter(priority="normal", query="ann@")
    count = actions.requeue_failed(email_filter, failed_before=utcnow(), actor=ACTOR)
    db.session.commit()
    assert count == 3
    for email_id in match:
        email = row(email_id)
        assert (email.status, email.attempts, email.lease_expires_at) == ("queued", 0, None)
        assert email.next_attempt_at is not None and email.next_attempt_at <= utcnow()
    for email_id, status in ((other_recipient, "failed"), (other_priority, "failed")):
        assert row(email_id).status == status
    assert row(not_failed).status == "sent"
    # Left to the sweeper, which is asked for at once: no message per row.
    assert after_commit == ["sweep"]
    target = {"status": "failed", "priority": "normal", "query": "ann@"}
    assert recorded() == [(ACTOR, "bulk-retry", target, 3)]


def test_bulk_retry_leaves_an_email_that_failed_after_the_count(
    after_commit: list[object],
) -> None:
    counted_at = utcnow()
    earlier = add_row(status="failed", updated_at=counted_at - timedelta(seconds=5))
    since = add_row(status="failed", updated_at=counted_at + timedelta(seconds=1))
    assert actions.requeue_failed(EmailFilter(), failed_before=counted_at, actor=ACTOR) == 1
    db.session.commit()
    assert (row(earlier).status, row(since).status) == ("queued", "failed")


def test_bulk_retry_that_matches_nothing_records_nothing(after_commit: list[object]) -> None:
    add_row(status="sent")
    assert actions.requeue_failed(EmailFilter(), failed_before=utcnow(), actor=ACTOR) == 0
    db.session.commit()
    assert recorded() == [] and after_commit == []


@pytest.mark.parametrize("status", ["sent", "queued", "scheduled", "cancelled"])
def test_only_failed_emails_are_bulk_retried(status: str) -> None:
    with pytest.raises(ValueError, match=f"only failed emails are retried, not {status} ones"):
        actions.failed_only(EmailFilter(status=status))
    assert actions.failed_only(EmailFilter(query="x")) == EmailFilter(status="failed", query="x")


def test_cancel_stops_a_scheduled_email_and_nothing_else(
    after_commit: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="web.outbox.actions")
    now = utcnow()
    scheduled = add_row(send_at=now + timedelta(hours=1), lease_expires_at=now)
    due = add_row(send_at=now - timedelta(seconds=1))
    at_once = add_row()
    failed = add_row(status="failed")
    assert actions.cancel(scheduled, actor="cli:ann") is True
    for email_id in (due, at_once, failed, 999_999, MAX_ID + 1):
        assert actions.cancel(email_id, actor="cli:ann") is False
    db.session.commit()
    email = row(scheduled)
    assert (email.status, email.next_attempt_at, email.lease_expires_at) == (
        "cancelled",
        None,
        None,
    )
    assert [row(i).status for i in (due, at_once, failed)] == ["queued", "queued", "failed"]
    assert actions.cancel(scheduled, actor="cli:ann") is False  # once
    assert recorded() == [("cli:ann", "cancel", {"id": scheduled}, 1)]
    assert f"cli:ann: cancel of email {scheduled} changed 1 email(s)" in caplog.text
    assert after_commit == []


def test_why_a_cancel_changed_nothing(app_context: Flask) -> None:
    now = utcnow()
    due = add_row(send_at=now - timedelta(minutes=1))
    sent = add_row(status="sent")
    at_once = add_row()
    assert actions.cancel_refusal(due).startswith(f"Email {due} was due at ")
    assert actions.cancel_refusal(due).endswith(" UTC: too late to cancel.")
    assert (
        actions.cancel_refusal(sent) == f"Email {sent} is sent, not scheduled: nothing to cancel."
    )
    assert "is queued, not scheduled" in actions.cancel_refusal(at_once)
    assert actions.cancel_refusal(424242) is None and actions.cancel_refusal(MAX_ID + 1) is None


def test_recent_actions_newest_first_and_described(app_context: Flask) -> None:
    for number in range(4):
        db.session.add(
            AdminAction(
                at=utcnow() + timedelta(seconds=number),
                actor=ACTOR,
                action="retry",
                target={"id": number},
                count=1,
            )
        )
    db.session.commit()
    assert [a.target["id"] for a in actions.recent_actions(3)] == [3, 2, 1]
    assert actions.describe_target({"id": 7}) == "email 7"
    assert actions.describe_target({"status": "failed", "query": "ann"}) == (
        "failed, matching 'ann'"
    )


def test_the_actors(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["ADMIN_USERNAME"] = "operator"
    with app.app_context():
        assert actions.admin_actor() == "admin:operator"
    monkeypatch.setattr(actions.getpass, "getuser", lambda: "ann")
    assert actions.cli_actor() == "cli:ann"

    def no_user() -> str:
        raise OSError("no user name")

    monkeypatch.setattr(actions.getpass, "getuser", no_user)
    assert actions.cli_actor().startswith("cli:uid ")
