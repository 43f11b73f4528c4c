"""The outbox dashboard at /admin: login, rate limit, counts, list, detail, retry, cookies.

Every test that uses `app` runs on SQLite and on PostgreSQL, with the login limit counted in
the test Redis.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from devtools.smtp_server import SMTPServer
from tests.forms import csrf_token
from tests.integration.admin_login import PASSWORD, USERNAME, admin_app, log_in
from tests.integration.conftest import ADMIN, emails, wait_for_status
from tests.integration.outbox_rows import add_emails, queue_email
from web.extensions import db
from web.models import Email, User, utcnow


@pytest.fixture
def app(database_url: str, redis_url: str, smtp_server: SMTPServer) -> Iterator[Flask]:
    """conftest's `app`, with an admin account and the login limit counted in the test Redis."""
    app = admin_app(database_url, redis_url, smtp_server.port)
    with app.app_context():
        db.session.execute(db.delete(Email))
        db.session.execute(db.delete(User))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    """A client with an admin session."""
    assert log_in(client).status_code == 302
    return client


def _page(response) -> str:
    assert response.status_code == 200, response.status
    return response.get_data(as_text=True)


def _listed_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/admin/emails/(\d+)">', page)]


def _counts(page: str) -> dict[str, int]:
    return {s: int(n) for s, n in re.findall(r'data-status="(\w+)">(\d+)<', page)}


# --- login ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", "/admin/?status=failed&page=2", "/admin/emails/1"])
def test_anonymous_visitors_are_sent_to_the_login_page(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert location.path == "/admin/login"
    assert parse_qs(location.query)["next"] == [path]


def test_anonymous_posts_do_nothing(app: Flask, client: FlaskClient) -> None:
    (email_id,) = add_emails(app, status="failed")
    token = csrf_token(client, "/admin/login")
    response = client.post(f"/admin/emails/{email_id}/retry", data={"csrf_token": token})
    assert response.status_code == 302 and response.location == "/admin/login"
    assert emails(app)[0].status == "failed"


def test_wrong_password_shows_the_login_page_with_an_error(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    page = _page(log_in(client, password="guess-123"))
    assert "Wrong username or password." in page
    assert "guess-123" not in page and "guess-123" not in caplog.text
    assert client.get("/admin/").status_code == 302


def test_wrong_username_is_refused_too(client: FlaskClient) -> None:
    assert "Wrong username or password." in _page(log_in(client, username="root"))


def test_the_right_password_opens_the_dashboard(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = log_in(client)
    assert response.status_code == 302 and response.location == "/admin/"
    assert "Outbox" in _page(client.get("/admin/"))
    assert PASSWORD not in caplog.text


def test_a_plain_password_from_the_environment_works_too(app: Flask, client: FlaskClient) -> None:
    app.config.update(ADMIN_PASSWORD_HASH=None, ADMIN_PASSWORD="plain secret ü")
    assert log_in(client, password="plain secret u").status_code == 200
    assert log_in(client, password="plain secret ü").status_code == 302


def test_an_empty_login_form_says_what_is_missing(client: FlaskClient) -> None:
    page = _page(log_in(client, username="", password=""))
    assert "Enter the username and the password." in page


def test_the_login_form_needs_its_csrf_token(client: FlaskClient) -> None:
    response = client.post("/admin/login", data={"username": USERNAME, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    ("next_", "expected"),
    [
        ("/admin/?status=failed", "/admin/?status=failed"),
        ("https://evil.example/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("javascript:alert(1)", "/admin/"),
    ],
)
def test_after_login_only_local_paths_are_followed(
    client: FlaskClient, next_: str, expected: str
) -> None:
    response = log_in(client, next_=quote(next_, safe=""))
    assert response.status_code == 302 and response.location == expected


def test_without_credentials_the_admin_refuses_every_login(app: Flask, client: FlaskClient) -> None:
    """One message, saying how to set the admin up: no form, no "wrong password" beside it."""
    app.config.update(ADMIN_USERNAME=None, ADMIN_PASSWORD_HASH=None, ADMIN_PASSWORD=None)
    page = _page(client.get("/admin/login"))
    assert "The admin is not configured" in page and "ADMIN_PASSWORD_HASH" in page
    assert "<form" not in page and 'role="alert"' not in page
    token = csrf_token(client, "/")  # the login page has no form: the name form's token
    for username, password in (("", ""), (USERNAME, PASSWORD), (USERNAME, "guess-123")):
        data = {"username": username, "password": password, "csrf_token": token}
        page = _page(client.post("/admin/login", data=data))
        assert "The admin is not configured" in page
        assert "Wrong username or password" not in page and "Enter the username" not in page
    assert client.get("/admin/").status_code == 302


def test_a_wrong_password_shows_only_that(client: FlaskClient) -> None:
    page = _page(log_in(client, password="guess-123"))
    assert page.count('role="alert"') == 1 and "Wrong username or password." in page
    assert "not configured" not in page


def test_logout_is_a_post_with_csrf_and_ends_the_session(admin: FlaskClient) -> None:
    assert admin.get("/admin/logout").status_code == 405
    assert admin.post("/admin/logout").status_code == 400
    token = csrf_token(admin, "/admin/")
    response = admin.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.location == "/admin/login"
    assert "You are logged out." in _page(admin.get("/admin/login"))
    assert admin.get("/admin/").status_code == 302


def test_changing_the_password_ends_existing_sessions(app: Flask, admin: FlaskClient) -> None:
    assert admin.get("/admin/").status_code == 200
    app.config["ADMIN_PASSWORD_HASH"] = generate_password_hash("a new password")
    assert admin.get("/admin/").status_code == 302


def test_the_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient) -> None:
    response = log_in(client)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the testing configuration speaks plain HTTP


# --- rate limit -----------------------------------------------------------------------------


def test_too_many_login_attempts_get_429(client: FlaskClient) -> None:
    for _ in range(5):
        assert "Wrong username or password." in _page(log_in(client, password="wrong"))
    response = log_in(client, password="wrong")
    assert response.status_code == 429
    assert "Too many login attempts" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    assert log_in(client).status_code == 429  # even the right password waits
    assert client.get("/admin/login").status_code == 200  # only POSTs are counted


def test_the_limit_comes_from_the_configuration(app: Flask, client: FlaskClient) -> None:
    app.config["ADMIN_LOGIN_RATE_LIMIT"] = "2 per minute"
    assert log_in(client, password="wrong").status_code == 200
    assert log_in(client, password="wrong").status_code == 200
    assert log_in(client, password="wrong").status_code == 429


# --- dashboard ------------------------------------------------------------------------------


def test_the_dashboard_counts_every_status_and_the_oldest_undelivered_age(
    app: Flask, admin: FlaskClient
) -> None:
    add_emails(app, 2)  # queued
    add_emails(app, created_at=utcnow() - timedelta(minutes=3, seconds=10))  # queued, oldest
    add_emails(app, status="retrying", attempts=2, last_error="451 try later")
    add_emails(app, 3, status="sent", attempts=1, sent_at=utcnow())
    add_emails(app, status="failed", attempts=1, last_error="550 no such user")
    add_emails(app, status="sent", created_at=utcnow() - timedelta(days=2), sent_at=utcnow())

    page = _page(admin.get("/admin/"))
    assert _counts(page) == {
        "queued": 3,
        "sending": 0,
        "retrying": 1,
        "sent": 4,
        "failed": 1,
        "cancelled": 0,
    }
    assert "Oldest undelivered: <strong>3 min</strong>" in page
    assert "550 no such user" in page and "451 try later" in page


def test_with_nothing_undelivered_the_dashboard_says_so(app: Flask, admin: FlaskClient) -> None:
    add_emails(app, status="sent", sent_at=utcnow())
    page = _page(admin.get("/admin/"))
    assert "Nothing waiting to be delivered" in page
    assert _counts(page) == {
        "queued": 0,
        "sending": 0,
        "retrying": 0,
        "sent": 1,
        "failed": 0,
        "cancelled": 0,
    }


def test_the_list_is_paginated_newest_first(app: Flask, admin: FlaskClient) -> None:
    ids = add_emails(app, 60)
    first = _page(admin.get("/admin/"))
    assert _listed_ids(first) == sorted(ids, reverse=True)[:50]
    assert "Page 1 of 2" in first
    second = _page(admin.get("/admin/?page=2"))
    assert _listed_ids(second) == sorted(ids, reverse=True)[50:]
    assert "Page 2 of 2" in second


@pytest.mark.parametrize(("page", "shown"), [("abc", 1), ("0", 1), ("-3", 1), ("99", 2)])
def test_an_invalid_page_number_shows_a_real_page(
    app: Flask, admin: FlaskClient, page: str, shown: int
) -> None:
    add_emails(app, 51)
    assert f"Page {shown} of 2" in _page(admin.get(f"/admin/?page={page}"))


def test_the_list_can_be_filtered_by_status(app: Flask, admin: FlaskClient) -> None:
    add_emails(app, 4)
    failed = add_emails(app, 2, status="failed", last_error="554 rejected " + "x" * 200)
    page = _page(admin.get("/admin/?status=failed"))
    assert sorted(_listed_ids(page)) == failed
    assert "554 rejected xxx" in page and "x" * 200 not in page  # truncated in the list
    assert len(re.findall(r'action="/admin/emails/\d+/retry"', page)) == 2
    everything = _page(admin.get("/admin/"))
    assert len(_listed_ids(everything)) == 6
    assert len(re.findall(r'action="/admin/emails/\d+/retry"', everything)) == 2


def test_an_unknown_status_is_ignored_with_a_message(app: Flask, admin: FlaskClient) -> None:
    add_emails(app, 2)
    page = _page(admin.get("/admin/?status=<b>lost</b>"))
    assert "There is no status" in page and "<b>lost</b>" not in page
    assert len(_listed_ids(page)) == 2


# --- one email ------------------------------------------------------------------------------

HTML_BODY = '<p>Hello <b>admin</b> &amp; "friends"</p><script>alert(1)</script>'
TEXT_BODY = "Hello admin\n<b>this is text, not HTML</b>"


def test_the_detail_page_shows_every_field_and_both_bodies(app: Flask, admin: FlaskClient) -> None:
    (email_id,) = add_emails(
        app,
        html_body=HTML_BODY,
        text_body=TEXT_BODY,
        status="sent",
        attempts=2,
        smtp_reply="250 2.0.0 Ok: queued as ABC123",
        refused_recipients={"bob@example.com": "550 5.1.1 unknown"},
        last_error="some recipients refused: bob@example.com",
        sent_at=utcnow(),
    )
    (email,) = emails(app)
    response = admin.get(f"/admin/emails/{email_id}")
    # The email's own inline styles may apply inside the frame (web/security.py).
    assert "style-src-attr 'unsafe-inline'" in response.headers["Content-Security-Policy"]
    page = _page(response)
    for value in (ADMIN, email.sender, email.subject, email.message_id, "ABC123", "550 5.1.1"):
        assert html.escape(value, quote=False) in page

    assert '<pre class="email-text-body">Hello admin\n&lt;b&gt;this is text' in page

    (iframe,) = re.findall(r"<iframe[^>]*>", page)
    assert re.search(r"\ssandbox\s", iframe) and "allow-" not in iframe
    (srcdoc,) = re.findall(r'srcdoc="([^"]*)"', iframe)
    assert html.unescape(srcdoc) == HTML_BODY
    outside = page.replace(srcdoc, "")
    assert "<b>" not in outside and "<script>" not in outside


def test_an_unknown_email_is_404(admin: FlaskClient) -> None:
    assert admin.get("/admin/emails/999999").status_code == 404


# --- retry ----------------------------------------------------------------------------------


def test_retry_needs_the_csrf_token(app: Flask, admin: FlaskClient) -> None:
    (email_id,) = add_emails(app, status="failed")
    assert admin.post(f"/admin/emails/{email_id}/retry").status_code == 400
    assert emails(app)[0].status == "failed"


def test_retry_sends_a_failed_email(
    app: Flask, admin: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    (email_id,) = add_emails(app, status="failed", attempts=8, last_error="554 try never")
    token = csrf_token(admin, f"/admin/emails/{email_id}")
    response = admin.post(f"/admin/emails/{email_id}/retry", data={"csrf_token": token})
    assert response.status_code == 302 and response.location == f"/admin/emails/{email_id}"
    assert f"Email {email_id} is queued again." in _page(admin.get(response.location))

    (email,) = wait_for_status(app, "sent")
    assert email.attempts == 1 and email.last_error is None
    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [ADMIN] and message.message_id == email.message_id


def test_retry_from_the_list_returns_to_the_list(app: Flask, admin: FlaskClient) -> None:
    (email_id,) = add_emails(app, status="failed")
    token = csrf_token(admin, "/admin/?status=failed")
    response = admin.post(
        f"/admin/emails/{email_id}/retry",
        data={"csrf_token": token, "next": "/admin/?status=failed"},
    )
    assert response.location == "/admin/?status=failed"
    (email,) = emails(app)
    assert email.status == "queued" and email.attempts == 0


@pytest.mark.parametrize("status", ["sent", "queued", "retrying"])
def test_retry_of_an_email_that_has_not_failed_changes_nothing(
    app: Flask, admin: FlaskClient, status: str
) -> None:
    (email_id,) = add_emails(app, status=status, attempts=1)
    (before,) = emails(app)
    token = csrf_token(admin, f"/admin/emails/{email_id}")
    response = admin.post(
        f"/admin/emails/{email_id}/retry", data={"csrf_token": token}, follow_redirects=True
    )
    assert f"Email {email_id} is {status}, not failed: nothing to retry." in _page(response)
    (after,) = emails(app)
    assert (after.status, after.attempts, after.updated_at) == (
        before.status,
        before.attempts,
        before.updated_at,
    )


def test_retry_of_an_unknown_email_is_404(admin: FlaskClient) -> None:
    token = csrf_token(admin, "/admin/")
    assert admin.post("/admin/emails/999999/retry", data={"csrf_token": token}).status_code == 404


# --- scheduled emails and priority ------------------------------------------------------------

# 10:30 in UTC+2: the dashboard writes every time in UTC (static/local-time.js localises it).
TOMORROW_ISH = datetime(2099, 1, 2, 10, 30, tzinfo=timezone(timedelta(hours=2)))
TOMORROW_ISH_TIME = (
    '<time datetime="2099-01-02T08:30:00Z" title="2099-01-02 08:30:00 UTC">'
    "2099-01-02 08:30 UTC</time>"
)


def _scheduled_count(page: str) -> int:
    (count,) = re.findall(r'data-filter="scheduled">(\d+)<', page)
    return int(count)


def _rows(page: str) -> dict[int, str]:
    """Each listed email's table row (its HTML), by id."""
    rows = re.findall(r'(<tr>\s*<td><a href="/admin/emails/(\d+)">.*?</tr>)', page, re.S)
    return {int(email_id): row for row, email_id in rows}


def _fields(page: str) -> dict[str, str]:
    """The detail page's fields: the HTML of each <dd>, by the text of its <dt>."""
    return dict(re.findall(r"<dt>([^<]+)</dt>\s*<dd[^>]*>(.*?)</dd>", page, re.S))


def test_scheduled_emails_are_counted_apart_and_are_never_late(
    app: Flask, admin: FlaskClient
) -> None:
    add_emails(app, created_at=utcnow() - timedelta(minutes=3, seconds=10))  # due, 3 min late
    queue_email(app, send_at=TOMORROW_ISH)
    # Queued a week ago for later: old, but not late.
    queue_email(app, send_at=TOMORROW_ISH, fields={"created_at": utcnow() - timedelta(days=7)})
    add_emails(app, status="sent", sent_at=utcnow())

    page = _page(admin.get("/admin/"))
    assert _counts(page) == {
        "queued": 3,
        "sending": 0,
        "retrying": 0,
        "sent": 1,
        "failed": 0,
        "cancelled": 0,
    }
    assert _scheduled_count(page) == 2
    assert "Oldest undelivered: <strong>3 min</strong>" in page


def test_with_only_scheduled_emails_nothing_is_due(app: Flask, admin: FlaskClient) -> None:
    queue_email(app, send_at=TOMORROW_ISH, fields={"created_at": utcnow() - timedelta(days=2)})
    page = _page(admin.get("/admin/"))
    assert "Nothing due to be delivered: 1 scheduled for later" in page
    assert "Oldest undelivered" not in page
    assert _counts(page)["queued"] == 1 and _scheduled_count(page) == 1


def test_a_scheduled_email_that_became_due_is_late_from_its_send_at(
    app: Flask, admin: FlaskClient, shift_clock: Callable[[timedelta], None]
) -> None:
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    became_due = queue_email(app, send_at=in_an_hour)
    still_scheduled = queue_email(app, send_at=TOMORROW_ISH)
    before = _page(admin.get("/admin/"))
    assert "Nothing due to be delivered: 2 scheduled for later" in before
    assert "scheduled for" in _rows(before)[became_due]

    shift_clock(timedelta(hours=1, minutes=5))  # created 1 h 5 min ago, due 5 min ago
    log_in(admin)  # an hour without a request ended the session
    page = _page(admin.get("/admin/"))
    assert "Oldest undelivered: <strong>5 min</strong>" in page
    assert _scheduled_count(page) == 1 and _counts(page)["queued"] == 2
    rows = _rows(page)
    assert "scheduled for" not in rows[became_due]
    assert f"scheduled for {TOMORROW_ISH_TIME}" in rows[still_scheduled]
    assert _listed_ids(_page(admin.get("/admin/?status=scheduled"))) == [still_scheduled]


def test_the_scheduled_filter_lists_only_emails_not_yet_due(
    app: Flask, admin: FlaskClient, shift_clock: Callable[[timedelta], None]
) -> None:
    add_emails(app)  # queued, due at once
    add_emails(app, status="failed", last_error="550 no")
    due_now = queue_email(app, send_at=datetime.now(UTC) + timedelta(minutes=30))
    later = [queue_email(app, send_at=TOMORROW_ISH, priority="bulk") for _ in range(2)]
    shift_clock(timedelta(hours=1))  # `due_now` is due, no longer scheduled
    log_in(admin)  # an hour without a request ended the session

    page = _page(admin.get("/admin/?status=scheduled"))
    assert _listed_ids(page) == sorted(later, reverse=True)
    assert '<h2 id="emails-heading">Scheduled emails</h2>' in page
    assert re.search(r'href="/admin/\?status=scheduled" aria-current="page">scheduled<', page)
    for row in _rows(page).values():
        assert f"scheduled for {TOMORROW_ISH_TIME}" in row
    # "queued" still lists every queued email, due or not.
    queued = _listed_ids(_page(admin.get("/admin/?status=queued")))
    assert due_now in queued and set(later) <= set(queued) and len(queued) == 4


def test_no_scheduled_emails_says_so(app: Flask, admin: FlaskClient) -> None:
    add_emails(app, 2)
    page = _page(admin.get("/admin/?status=scheduled&page=x"))
    assert "No emails scheduled for later." in page
    assert _listed_ids(page) == [] and _scheduled_count(page) == 0


def test_the_list_shows_each_emails_priority_and_when_a_scheduled_one_is_due(
    app: Flask, admin: FlaskClient
) -> None:
    high = queue_email(app, priority="high")
    bulk_later = queue_email(app, priority="bulk", send_at=TOMORROW_ISH)
    normal = queue_email(app)
    page = _page(admin.get("/admin/"))
    assert '<th scope="col">Priority</th>' in page
    rows = _rows(page)
    assert '<span class="priority priority-high">high</span>' in rows[high]
    assert '<span class="priority priority-normal">normal</span>' in rows[normal]
    assert '<span class="priority priority-bulk">bulk</span>' in rows[bulk_later]
    assert f"scheduled for {TOMORROW_ISH_TIME}" in rows[bulk_later]
    assert "scheduled for" not in rows[high] and "scheduled for" not in rows[normal]


PDF = bytes(range(256)) * 6  # 1,536 bytes, every byte value
MARK = b"ATTACHMENT-CONTENT-NEVER-SHOWN"


def test_the_detail_page_shows_the_mail_api_fields_escaped(app: Flask, admin: FlaskClient) -> None:
    email_id = queue_email(
        app,
        cc=["carol@example.com", '"<b>Dan</b>" <dan@example.com>'],
        bcc="hidden@example.com",
        reply_to="Help <help@example.com>",
        idempotency_key="order-42:<i>x</i>",
        attachments=[
            ("报告.pdf", "application/pdf", PDF),
            ("Tom & Jerry's.txt", "text/plain", MARK),  # < > are refused in filenames
        ],
        send_at=TOMORROW_ISH,
        priority="high",
    )
    page = _page(admin.get(f"/admin/emails/{email_id}"))
    fields = _fields(page)
    assert fields["Priority"] == '<span class="priority priority-high">high</span>'
    assert TOMORROW_ISH_TIME in fields["Send at"]
    assert "scheduled, not yet due" in fields["Send at"]
    # Escaped (see the end), and reading as written once unescaped.
    assert html.unescape(fields["Cc"]) == 'carol@example.com, "<b>Dan</b>" <dan@example.com>'
    assert fields["Bcc"] == "hidden@example.com"
    assert fields["Reply-To"] == "Help &lt;help@example.com&gt;"
    assert fields["Idempotency key"] == "<code>order-42:&lt;i&gt;x&lt;/i&gt;</code>"
    attachments = re.findall(r"<li>(.*?)</li>", fields["Attachments"], re.S)
    assert [re.sub(r"<[^>]+>", "", item) for item in attachments] == [
        "报告.pdf application/pdf, 1.5 KiB (1,536 bytes)",
        "Tom &amp; Jerry&#39;s.txt text/plain, 30 bytes",
    ]
    assert MARK.decode() not in page
    outside = page.replace(re.search(r'srcdoc="[^"]*"', page).group(0), "")
    for markup in ("<b>", "<i>", "<script>"):
        assert markup not in outside


def test_the_detail_page_of_a_plain_email_shows_the_defaults(
    app: Flask, admin: FlaskClient, shift_clock: Callable[[timedelta], None]
) -> None:
    (plain,) = add_emails(app)
    due = queue_email(app, send_at=datetime.now(UTC) + timedelta(minutes=10))
    fields = _fields(_page(admin.get(f"/admin/emails/{plain}")))
    assert fields["Priority"] == '<span class="priority priority-normal">normal</span>'
    assert fields["Send at"] == "at once"
    for name in ("Cc", "Bcc", "Reply-To", "Idempotency key"):
        assert fields[name] == "&mdash;", name
    assert fields["Attachments"].strip() == "&mdash;"

    shift_clock(timedelta(minutes=20))  # past its send_at: due, not scheduled any more
    send_at = _fields(_page(admin.get(f"/admin/emails/{due}")))["Send at"]
    assert send_at.startswith("<time datetime=") and "scheduled" not in send_at
