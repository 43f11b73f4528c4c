"""The dashboard's actions (web/outbox/actions.py): retry every failed email a filter finds
after a confirmation that shows how many, cancel a scheduled email, and the record of both,
with a real worker, Redis and SMTP server.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from devtools.smtp_server import SMTPServer
from devtools.waiting import wait_until
from tests.forms import csrf_token
from tests.integration.admin_login import PASSWORD, USERNAME, log_in
from tests.integration.conftest import emails, wait_for_status
from tests.integration.outbox_rows import add_emails, queue_email
from web.extensions import db
from web.models import AdminAction, Email, utcnow
from web.outbox.api import publish
from worker.tasks import sweep_outbox

ACTOR = f"admin:{USERNAME}"


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` with an admin account."""
    app.config.update(
        ADMIN_USERNAME=USERNAME, ADMIN_PASSWORD=PASSWORD, ADMIN_LOGIN_RATE_LIMIT="100 per minute"
    )
    with app.app_context():
        db.session.execute(db.delete(AdminAction))
        db.session.commit()
    return app


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    assert log_in(client).status_code == 302
    return client


def recorded(app: Flask) -> list[tuple[str, str, dict[str, object], int]]:
    with app.app_context():
        statement = select(AdminAction).order_by(AdminAction.id)
        return [(a.actor, a.action, a.target, a.count) for a in db.session.scalars(statement)]


def statuses(app: Flask, ids: list[int]) -> list[str]:
    by_id = {email.id: email.status for email in emails(app)}
    return [by_id[email_id] for email_id in ids]


def hidden_fields(page: str) -> dict[str, str]:
    """The confirmation form's hidden inputs, as the browser would post them."""
    (form,) = re.findall(r'<form class="confirm-form".*?</form>', page, re.S)
    pairs = re.findall(r'<input name="([^"]+)" type="hidden" value="([^"]*)">', form)
    return {name: html.unescape(value) for name, value in pairs}


def flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="flash[^"]*"[^>]*>([^<]*)</p>', page)]


def _set_status(app: Flask, email_id: int, status: str) -> None:
    with app.app_context():
        db.session.execute(
            update(Email).where(Email.id == email_id).values(status=status, updated_at=utcnow())
        )
        db.session.commit()


# --- bulk retry ---------------------------------------------------------------------------------


def test_a_bulk_retry_confirms_the_count_and_retries_only_the_matching_failed_emails(
    app: Flask, admin: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    ann = {"recipients": ["ann@example.com"], "priority": "high"}
    matching = add_emails(app, 3, status="failed", attempts=8, last_error="554 no", **ann)
    other_recipient = add_emails(app, 2, status="failed", recipients=["bob@example.com"])
    other_priority = add_emails(app, status="failed", recipients=["ann@example.com"])
    (sent,) = add_emails(app, status="sent", sent_at=utcnow(), **ann)

    dashboard = admin.get("/admin/?q=ann&priority=high").get_data(as_text=True)
    assert "Retry 3 failed emails matching this filter" in dashboard
    confirm = admin.get("/admin/retry-failed?q=ann&priority=high")
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    assert '<strong class="confirm-count">3</strong>' in page
    assert "failed, priority high, matching &#39;ann&#39;" in page
    fields = hidden_fields(page)
    assert {k: fields[k] for k in ("q", "priority", "count")} == {
        "q": "ann", "priority": "high", "count": "3"
    }  # fmt: skip

    # Before the operator confirms: one of them is dealt with elsewhere, and another email
    # that the filter finds fails. Neither is what the operator was asked about.
    _set_status(app, matching[0], "sent")
    (failed_since,) = add_emails(app, status="failed", **ann)

    response = admin.post("/admin/retry-failed", data=fields)
    assert response.status_code == 302 and response.location == "/admin/?priority=high&q=ann"
    assert flashes(admin.get(response.location).get_data(as_text=True)) == [
        "2 emails of the 3 you confirmed queued again: the others were retried, or failed "
        "anew, since the count."
    ]
    assert recorded(app) == [
        (ACTOR, "bulk-retry", {"status": "failed", "priority": "high", "query": "ann"}, 2)
    ]
    # The sweep asked for at the commit publishes them; the worker sends them.
    retried = wait_for_status(app, "sent", count=4)
    assert {e.id for e in retried} == {sent, *matching}
    messages = smtp_server.wait_for_messages(2)
    assert len(messages) == 2 and all(m.rcpt_tos == ["ann@example.com"] for m in messages)
    unchanged = [*other_recipient, *other_priority, failed_since]
    assert statuses(app, unchanged) == ["failed"] * 4


def test_a_bulk_retry_needs_the_login_and_the_csrf_token(app: Flask, client: FlaskClient) -> None:
    failed = add_emails(app, 2, status="failed")
    anonymous = client.get("/admin/retry-failed")
    assert anonymous.status_code == 302 and anonymous.location.startswith("/admin/login")
    assert log_in(client).status_code == 302
    fields = hidden_fields(client.get("/admin/retry-failed").get_data(as_text=True))
    del fields["csrf_token"]
    assert client.post("/admin/retry-failed", data=fields).status_code == 400
    assert statuses(app, failed) == ["failed", "failed"] and recorded(app) == []


def test_a_bulk_retry_refuses_another_status_and_an_incomplete_confirmation(
    app: Flask, admin: FlaskClient
) -> None:
    failed = add_emails(app, 2, status="failed")
    refused = admin.get("/admin/retry-failed?status=sent", follow_redirects=True)
    assert "Only failed emails can be retried, not sent ones." in flashes(refused.text)
    token = csrf_token(admin, "/admin/")
    incomplete = admin.post(
        "/admin/retry-failed",
        data={"csrf_token": token, "count": "2", "counted_at": "yesterday"},
        follow_redirects=True,
    )
    assert flashes(incomplete.text) == [
        "The confirmation was incomplete: nothing was retried. Try again."
    ]
    nothing = admin.get("/admin/retry-failed?q=nobody").get_data(as_text=True)
    assert "No failed email matches (failed, matching &#39;nobody&#39;)" in nothing
    assert "confirm-form" not in nothing
    assert statuses(app, failed) == ["failed", "failed"] and recorded(app) == []


# --- cancel -------------------------------------------------------------------------------------

LATER = datetime(2099, 1, 2, 8, 30, tzinfo=UTC)


def _cancel(admin: FlaskClient, email_id: int, next_: str | None = None) -> list[str]:
    data = {"csrf_token": csrf_token(admin, "/admin/")}
    if next_:
        data["next"] = next_
    response = admin.post(f"/admin/emails/{email_id}/cancel", data=data, follow_redirects=True)
    assert response.status_code == 200, response.status
    return flashes(response.text)


def test_a_scheduled_email_is_cancelled_from_the_dashboard_and_shown_as_such(
    app: Flask, admin: FlaskClient
) -> None:
    scheduled = queue_email(app, send_at=LATER)
    (due,) = add_emails(app)
    page = admin.get("/admin/").get_data(as_text=True)
    assert page.count('action="/admin/emails/') == 1  # one Cancel, for the scheduled one
    assert f'action="/admin/emails/{scheduled}/cancel"' in page
    assert 'aria-label="Cancel email' in admin.get(f"/admin/emails/{scheduled}").text
    assert "/cancel" not in admin.get(f"/admin/emails/{due}").text

    assert _cancel(admin, scheduled, next_="/admin/?status=scheduled") == [
        f"Email {scheduled} is cancelled: it will not be sent."
    ]
    email_page = admin.get(f"/admin/emails/{scheduled}").text
    assert '<span class="status status-cancelled">cancelled</span>' in email_page
    assert "/cancel" not in email_page
    dashboard = admin.get("/admin/").text
    assert re.search(r'data-status="cancelled">1<', dashboard)
    assert (
        f'href="/admin/emails/{scheduled}">#{scheduled}<'
        in admin.get("/admin/?status=cancelled").text
    )
    assert "No emails scheduled for later." in admin.get("/admin/?status=scheduled").text
    assert recorded(app) == [(ACTOR, "cancel", {"id": scheduled}, 1)]
    assert "Recent actions" in dashboard and ACTOR in dashboard
    assert f'<a href="/admin/emails/{scheduled}">email {scheduled}</a>' in dashboard

    # Only once, and only a scheduled email.
    assert _cancel(admin, scheduled) == [
        f"Email {scheduled} is cancelled, not scheduled: nothing to cancel."
    ]
    assert _cancel(admin, due) == [f"Email {due} is queued, not scheduled: nothing to cancel."]
    assert statuses(app, [due]) == ["queued"] and len(recorded(app)) == 1


def test_a_cancel_needs_the_csrf_token_and_a_real_email(app: Flask, admin: FlaskClient) -> None:
    scheduled = queue_email(app, send_at=LATER)
    assert admin.post(f"/admin/emails/{scheduled}/cancel").status_code == 400
    token = csrf_token(admin, "/admin/")
    for email_id in (424242, 2**31, 10**30):
        response = admin.post(f"/admin/emails/{email_id}/cancel", data={"csrf_token": token})
        assert response.status_code == 404
    assert statuses(app, [scheduled]) == ["queued"] and recorded(app) == []


def test_a_cancelled_email_is_never_sent_even_after_redis_is_emptied_and_the_sweeper_runs(
    app: Flask,
    admin: FlaskClient,
    redis_url: str,
    smtp_server: SMTPServer,
    shift_clock: Callable[[timedelta], None],
    celery_worker: object,
) -> None:
    at = datetime.now(UTC) + timedelta(hours=1)
    cancelled = queue_email(app, send_at=at)
    kept = queue_email(app, send_at=at)  # due at the same time: shows the sweeps do run
    assert _cancel(admin, cancelled) == [f"Email {cancelled} is cancelled: it will not be sent."]

    broker = redis.Redis.from_url(redis_url)
    broker.flushall()
    shift_clock(timedelta(hours=1, minutes=1))  # both are due now, for the worker too
    with app.app_context():
        # A message for it that was already on its way: the worker's claim refuses the row.
        assert publish([(cancelled, "normal")]) == []
        wait_until(
            lambda: broker.llen("flasky.normal") == 0 and broker.hlen("unacked") == 0,
            10,
            "the worker to take the stale message",
        )
        assert sweep_outbox() == 1  # `kept` alone
    (message,) = smtp_server.wait_for_messages(1, timeout=30)
    (sent,) = wait_for_status(app, "sent")
    assert sent.id == kept and message.message_id == sent.message_id
    # Redis loses everything again; sweep after sweep finds nothing to send.
    broker.flushall()
    with app.app_context():
        assert [sweep_outbox() for _ in range(3)] == [0, 0, 0]
    assert len(smtp_server.messages) == 1
    row = next(email for email in emails(app) if email.id == cancelled)
    assert (row.status, row.attempts, row.sent_at) == ("cancelled", 0, None)


# --- the record -----------------------------------------------------------------------------------


def test_a_single_retry_is_recorded_and_listed_on_the_dashboard(
    app: Flask, admin: FlaskClient
) -> None:
    (failed,) = add_emails(app, status="failed")
    token = csrf_token(admin, "/admin/")
    assert (
        admin.post(f"/admin/emails/{failed}/retry", data={"csrf_token": token}).status_code == 302
    )
    assert recorded(app) == [(ACTOR, "retry", {"id": failed}, 1)]
    actions = re.search(r'<ul class="action-list">(.*?)</ul>', admin.get("/admin/").text, re.S)
    assert actions is not None
    text = " ".join(re.sub(r"<[^>]+>", "", actions.group(1)).split())
    assert f"{ACTOR} retry email {failed}: 1 email" in text
