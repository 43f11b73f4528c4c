"""Search, bulk retry and cancel in a real browser, at 1280×800 and on a 390×844 phone: each
control is on the screen, within its width, and does what it says (screenshots in
/tmp/shots-13a/ and test-output/)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import delete

from tests.integration.admin_login import PASSWORD, USERNAME
from tests.integration.browser.conftest import DESKTOP, OpenPage, log_in
from tests.integration.conftest import emails
from tests.integration.outbox_rows import add_emails, queue_email
from web.extensions import db
from web.models import AdminAction

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SCREENS = {
    "desktop": {"viewport": DESKTOP},
    "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True},
}
SHOTS = Path("/tmp/shots-13a")


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` with an admin account, and no actions recorded by an earlier test."""
    app.config.update(
        ADMIN_USERNAME=USERNAME, ADMIN_PASSWORD=PASSWORD, ADMIN_LOGIN_RATE_LIMIT="100 per minute"
    )
    with app.app_context():
        db.session.execute(delete(AdminAction))
        db.session.commit()
    return app


def on_screen(locator: Locator, width: int) -> None:
    """Visible, and inside the viewport's width (no sideways scrolling needed to reach it)."""
    locator.scroll_into_view_if_needed()
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box


def shoot(page: Page, output_dir: Path, name: str) -> None:
    page.screenshot(path=output_dir / f"{name}.png", full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(output_dir / f"{name}.png", SHOTS / f"{name}.png")


@pytest.mark.parametrize("screen", list(SCREENS))
def test_search_bulk_retry_and_cancel_are_reachable_and_work(
    app: Flask,
    open_page: OpenPage,
    live_server: str,
    console_errors: list[str],
    output_dir: Path,
    screen: str,
) -> None:
    width = SCREENS[screen]["viewport"]["width"]
    ann = add_emails(
        app,
        3,
        status="failed",
        attempts=8,
        priority="high",
        last_error="550 5.1.1 mailbox unavailable",
        recipients=["Ann Lee <ann@example.com>"],
    )
    add_emails(app, 2, status="failed", recipients=["bob@example.com"], last_error="554 no")
    add_emails(app, 4, recipients=["ann@example.com"])
    later = datetime.now(UTC) + timedelta(days=1)
    scheduled = [queue_email(app, send_at=later, priority="bulk") for _ in range(2)]

    page = open_page(**SCREENS[screen])
    log_in(page, live_server)
    form = page.get_by_role("search")
    search = form.get_by_role("searchbox", name="Search")
    status = form.get_by_label("Status")
    priority = form.get_by_label("Priority")
    submit = form.get_by_role("button", name="Search")
    for control in (search, status, priority, submit):
        on_screen(control, width)

    # Search: text, priority and status together; the form keeps what it applied.
    search.fill("ANN@")
    priority.select_option("high")
    status.select_option("failed")
    submit.click()
    expect(page.locator("table.emails tbody tr")).to_have_count(3)
    expect(page.locator(".filter-summary p")).to_have_text(
        "3 emails found: failed, priority high, matching 'ANN@'."
    )
    expect(search).to_have_value("ANN@")
    expect(priority).to_have_value("high")
    shoot(page, output_dir, f"{screen}-1-search")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width

    # Bulk retry: the button, the confirmation with its count, the result.
    bulk = page.get_by_role("link", name="Retry 3 failed emails matching this filter")
    on_screen(bulk, width)
    bulk.click()
    expect(page.locator(".confirm-count")).to_have_text("3")
    confirm = page.get_by_role("button", name="Retry 3 emails")
    on_screen(confirm, width)
    shoot(page, output_dir, f"{screen}-2-confirm")
    confirm.click()
    expect(page.locator(".flash-success")).to_have_text("3 emails queued again.")
    expect(search).to_have_value("ANN@")  # back to the same filter
    expect(page.locator("table.emails tbody tr")).to_have_count(0)
    shoot(page, output_dir, f"{screen}-3-retried")
    by_id = {email.id: email for email in emails(app)}
    assert [by_id[i].status for i in ann] == ["queued"] * 3
    assert [e.status for e in by_id.values() if e.recipients == ["bob@example.com"]] == [
        "failed",
        "failed",
    ]

    # Cancel from the list of scheduled emails, then from an email's own page.
    form.get_by_role("link", name="Clear").click()
    status.select_option("scheduled")
    submit.click()
    expect(page.locator("table.emails tbody tr")).to_have_count(2)
    cancel = page.get_by_role("button", name=f"Cancel email {scheduled[1]}")
    on_screen(cancel, width)
    shoot(page, output_dir, f"{screen}-4-scheduled")
    cancel.click()
    expect(page.locator(".flash-success")).to_have_text(
        f"Email {scheduled[1]} is cancelled: it will not be sent."
    )
    expect(page.locator("table.emails tbody tr")).to_have_count(1)

    page.goto(f"{live_server}/admin/emails/{scheduled[0]}")
    cancel = page.get_by_role("button", name=f"Cancel email {scheduled[0]}")
    on_screen(cancel, width)
    cancel.click()
    expect(page.locator(".email-fields .status")).to_have_text("cancelled")
    expect(page.get_by_role("button", name=f"Cancel email {scheduled[0]}")).to_have_count(0)
    shoot(page, output_dir, f"{screen}-5-cancelled")

    page.goto(f"{live_server}/admin/")
    actions = page.locator(".recent-actions li")
    expect(actions).to_have_count(3)
    on_screen(actions.first, width)
    expect(actions.first).to_contain_text(f"admin:{USERNAME} cancel email {scheduled[0]}")
    shoot(page, output_dir, f"{screen}-6-actions")
    assert [e.status for e in emails(app) if e.id in scheduled] == ["cancelled", "cancelled"]
    assert console_errors == []
