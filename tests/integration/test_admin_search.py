"""The dashboard's search (web/outbox/search.py): text, status and priority together, pages
that keep the filter and count only what it finds, and bad input that never gives a 500.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.integration.admin_login import PASSWORD, USERNAME, log_in
from tests.integration.outbox_rows import add_emails


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` with an admin account."""
    app.config.update(
        ADMIN_USERNAME=USERNAME, ADMIN_PASSWORD=PASSWORD, ADMIN_LOGIN_RATE_LIMIT="100 per minute"
    )
    return app


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    assert log_in(client).status_code == 302
    return client


def dashboard(admin: FlaskClient, **args: str) -> str:
    response = admin.get("/admin/?" + urlencode(args))
    assert response.status_code == 200, response.status
    return response.get_data(as_text=True)


def listed(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/admin/emails/(\d+)">', page)]


def page_link(page: str, rel: str) -> dict[str, list[str]]:
    (href,) = re.findall(rf'<a rel="{rel}" href="([^"]+)"', page)
    return parse_qs(urlsplit(href.replace("&amp;", "&")).query)


def notices(page: str) -> list[str]:
    return re.findall(r'<p class="error" role="alert">([^<]*)</p>', page)


def test_a_search_with_status_and_priority_pages_through_what_it_finds(
    app: Flask, admin: FlaskClient
) -> None:
    ann = add_emails(app, 55, recipients=["Ann Lee <ann@example.com>"])
    add_emails(app, 5, recipients=["bob@example.com"])
    failed_high = add_emails(
        app, 3, status="failed", recipients=["ann@example.com"], priority="high"
    )
    add_emails(app, 2, status="failed", recipients=["bob@example.com"], priority="high")

    first = dashboard(admin, q="ANN@example")
    assert listed(first) == sorted(ann + failed_high, reverse=True)[:50]
    assert "Page 1 of 2 (58 emails)" in first
    assert "58 emails found: matching &#39;ANN@example&#39;." in first
    assert page_link(first, "next") == {"page": ["2"], "q": ["ANN@example"]}
    second = dashboard(admin, q="ANN@example", page="2")
    assert listed(second) == sorted(ann + failed_high, reverse=True)[50:]
    assert page_link(second, "prev") == {"page": ["1"], "q": ["ANN@example"]}

    combined = dashboard(admin, q="ann@", status="failed", priority="high")
    assert listed(combined) == sorted(failed_high, reverse=True)
    assert "3 emails found: failed, priority high, matching &#39;ann@&#39;." in combined
    assert "Page 1 of" not in combined  # one page: no pagination
    # The form shows the filter it applied.
    assert 'name="q" type="search" value="ann@"' in combined
    assert '<option value="failed" selected>' in combined
    assert '<option value="high" selected>' in combined
    assert listed(dashboard(admin, q=f"#{failed_high[0]}")) == [failed_high[0]]
    assert listed(dashboard(admin, q=str(failed_high[0]), status="sent")) == []


def test_a_filter_with_many_pages_keeps_every_filter_in_its_links(
    app: Flask, admin: FlaskClient
) -> None:
    wanted = add_emails(app, 120, status="failed", priority="bulk", subject="[Flasky] Digest")
    add_emails(app, 30, status="failed", priority="bulk", subject="[Flasky] Other")
    args = {"q": "digest", "status": "failed", "priority": "bulk"}
    middle = dashboard(admin, page="2", **args)
    assert "Page 2 of 3 (120 emails)" in middle
    assert listed(middle) == sorted(wanted, reverse=True)[50:100]
    for rel, number in (("prev", "1"), ("next", "3")):
        assert page_link(middle, rel) == {"page": [number], **{k: [v] for k, v in args.items()}}
    last = dashboard(admin, page="99", **args)  # past the end: the last page
    assert "Page 3 of 3 (120 emails)" in last and len(listed(last)) == 20


def test_a_failed_filter_offers_to_retry_what_it_finds(app: Flask, admin: FlaskClient) -> None:
    add_emails(app, 2, status="failed", recipients=["ann@example.com"])
    add_emails(app, 1, status="failed", recipients=["bob@example.com"])
    add_emails(app, 4, recipients=["ann@example.com"])
    page = dashboard(admin, q="ann")
    assert (
        '<a class="button button-small" href="/admin/retry-failed?q=ann">'
        "Retry 2 failed emails matching this filter</a>"
    ) in page
    assert "Retry 3 failed emails</a>" in dashboard(admin)
    assert "retry-failed" not in dashboard(admin, status="queued")
    assert "retry-failed" not in dashboard(admin, q="nobody")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"page": "abc"}, []),
        ({"page": "9" * 5000}, []),
        ({"q": "x" * 10_000}, ["A search is at most 320 characters; this one has 10,000."]),
        ({"q": "a\x00b"}, ["A search cannot contain control characters."]),
        ({"q": str(2**31)}, []),
        ({"q": "#" + "9" * 40}, []),
        ({"q": "%_\\"}, []),
        ({"q": "'; DROP TABLE emails; --"}, []),
        (
            {"status": "<b>lost</b>", "priority": "urgent"},
            [
                "There is no status &#39;&lt;b&gt;lost&lt;/b&gt;&#39;; the statuses are queued, "
                "sending, retrying, sent, failed, cancelled and scheduled.",
                "There is no priority &#39;urgent&#39;; the priorities are high, normal and bulk.",
            ],
        ),
    ],
)
def test_bad_input_is_a_notice_never_a_500(
    app: Flask, admin: FlaskClient, args: dict[str, str], expected: list[str]
) -> None:
    add_emails(app, 2)
    page = dashboard(admin, **args)
    assert notices(page) == expected
    assert "<b>lost</b>" not in page


def test_an_id_too_large_for_the_column_is_no_email(admin: FlaskClient) -> None:
    for email_id in (2**31, 10**30):
        assert admin.get(f"/admin/emails/{email_id}").status_code == 404
    assert dashboard(admin, q=str(2**31)).count("No emails found.") == 1
