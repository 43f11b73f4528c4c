"""The dashboard fits the screen: every needed column at 1280×800, a card per email on a phone,
and its times in the viewer's time zone (the UTC in the title)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Locator, Page, expect

from tests.integration.admin_login import PASSWORD, USERNAME
from tests.integration.browser.conftest import DESKTOP, OpenPage, log_in
from tests.integration.outbox_rows import add_emails

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LONG_SUBJECT = "Your quarterly statement is ready: " + "a very long subject line " * 12
LONG_ERROR = "550 5.1.1 <nobody@example.com>: Recipient address rejected: " + "x" * 400
CREATED = datetime(2026, 11, 29, 21, 55, 50)  # naive UTC, as the models store it

# Each cell a person needs, by its class in a row (the first cell is the email's link).
NEEDED = ["td:first-child", ".status-cell", ".recipients", ".subject", ".created"]


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` with an admin account."""
    app.config.update(
        ADMIN_USERNAME=USERNAME, ADMIN_PASSWORD=PASSWORD, ADMIN_LOGIN_RATE_LIMIT="100 per minute"
    )
    return app


def fill_outbox(app: Flask) -> list[int]:
    add_emails(app, 2, created_at=CREATED)
    add_emails(app, status="sent", attempts=1, sent_at=CREATED, created_at=CREATED)
    return add_emails(
        app,
        status="failed",
        attempts=8,
        subject=LONG_SUBJECT,
        last_error=LONG_ERROR,
        recipients=["someone.with.a.long.address@subdomain.example.com", "b@example.com"],
        created_at=CREATED,
    )


def right_edge(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not shown"
    return box["x"] + box["width"]


def scroll_width(page: Page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def test_every_needed_column_fits_at_1280(
    app: Flask, page: Page, live_server: str, console_errors: list[str], output_dir: Path
) -> None:
    (failed,) = fill_outbox(app)
    log_in(page, live_server)
    rows = page.locator("table.emails tbody tr")
    expect(rows).to_have_count(4)
    page.screenshot(path=output_dir / "dashboard-1280.png", full_page=True)

    assert scroll_width(page) <= DESKTOP["width"]
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth"), "the table scrolls sideways"
    for header in page.locator("table.emails th").all():
        assert right_edge(header) <= DESKTOP["width"], header.inner_text()
    for row in rows.all():
        for cell in NEEDED:
            assert right_edge(row.locator(cell)) <= DESKTOP["width"], cell
    row = rows.filter(has=page.locator(f"a[href='/admin/emails/{failed}']"))
    retry = row.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    assert right_edge(retry) <= DESKTOP["width"]
    error = row.locator(".last-error-cell .clamp")
    expect(error).to_be_visible()
    assert right_edge(error) <= DESKTOP["width"]

    # Long text is cut at two lines, the whole of it (up to 200 characters) in the title.
    subject = row.locator(".subject .clamp")
    expect(subject).to_have_attribute("title", LONG_SUBJECT)
    assert error.get_attribute("title") == LONG_ERROR[:197] + "..."  # the rest on its page
    line_height = float(subject.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
    for clamped in (subject, error):
        assert clamped.bounding_box()["height"] <= 2 * line_height + 1
    assert console_errors == []


def test_each_email_is_a_card_on_a_phone(
    app: Flask, open_page: OpenPage, live_server: str, console_errors: list[str], output_dir: Path
) -> None:
    (failed,) = fill_outbox(app)
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(page, live_server)
    rows = page.locator("table.emails tbody tr")
    expect(rows).to_have_count(4)
    page.screenshot(path=output_dir / "dashboard-phone.png", full_page=True)

    assert scroll_width(page) <= PHONE["width"]
    for row in rows.all():
        row.scroll_into_view_if_needed()
        for cell in [".status", ".recipients", ".subject", ".created time"]:
            expect(row.locator(cell)).to_be_visible()
            assert right_edge(row.locator(cell)) <= PHONE["width"], cell
    row = rows.filter(has=page.locator(f"a[href='/admin/emails/{failed}']"))
    retry = row.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    assert right_edge(retry) <= PHONE["width"]
    expect(row.locator(".last-error-cell")).to_be_visible()
    assert console_errors == []


def test_times_are_shown_in_the_viewers_time_zone(
    app: Flask, open_page: OpenPage, live_server: str, console_errors: list[str], output_dir: Path
) -> None:
    (failed,) = fill_outbox(app)
    page = open_page(viewport=DESKTOP, timezone_id="Asia/Tokyo", locale="en-US")
    log_in(page, live_server)
    created = page.locator(f"tr:has(a[href='/admin/emails/{failed}']) .created time")
    expect(created).to_have_attribute("datetime", "2026-11-29T21:55:50Z")
    expect(created).to_have_attribute("title", "2026-11-29 21:55:50 UTC")
    expect(created).to_have_text("2026-11-30 06:55 GMT+9")  # 9 hours ahead of UTC
    page.screenshot(path=output_dir / "dashboard-tokyo.png", full_page=True)

    page.goto(f"{live_server}/admin/emails/{failed}")
    times = page.locator(".email-fields time")
    expect(times.first).to_contain_text("GMT+9")
    for time in times.all():
        assert time.get_attribute("title").endswith(" UTC")
        assert time.inner_text().endswith("GMT+9")
    assert console_errors == []
