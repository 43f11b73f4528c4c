"""The outbox dashboard in a real browser: a rejected email is seen failing, retried, and sent."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Locator, Page, expect

from devtools.smtp_server import SMTPServer
from tests.integration.admin_login import PASSWORD, USERNAME
from tests.integration.browser.conftest import log_in, screenshot_with_email_frame
from tests.integration.browser.test_name_form import submit_name
from tests.integration.conftest import ADMIN
from tests.integration.outbox_rows import queue_email

pytestmark = pytest.mark.browser


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` with an admin account (read per request by web/admin/auth.py)."""
    app.config.update(
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD=PASSWORD,
        ADMIN_LOGIN_RATE_LIMIT="100 per minute",  # counted in a Redis other runs share
    )
    return app


def reload_until(page: Page, locator: Locator, text: str, timeout: float = 15.0) -> None:
    """Reload `page` until `locator` reads `text`: the pages do not refresh themselves."""
    deadline = time.monotonic() + timeout
    while locator.inner_text().strip() != text:
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {text!r}, still {locator.inner_text()!r}")
        page.wait_for_timeout(200)
        page.reload()


def test_a_failed_email_is_retried_from_the_dashboard_and_sent(
    page: Page,
    live_server: str,
    celery_worker: object,
    smtp_server: SMTPServer,
    console_errors: list[str],
    output_dir: Path,
) -> None:
    smtp_server.reply_at("eom", "550 5.7.1 rejected")
    page.goto(live_server)
    submit_name(page, "Margaret")
    expect(page.get_by_role("status")).to_have_text("Thanks, Margaret! The admin has been told.")

    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(f"{live_server}/admin/login?next=/admin/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Outbox")).to_be_visible()
    row = page.locator("table.emails tbody tr").filter(has_text=ADMIN)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("[Flasky] New User")
    reload_until(page, row.locator(".status"), "failed")
    expect(row).to_contain_text("550 5.7.1 rejected")
    page.screenshot(path=output_dir / "dashboard-failed.png", full_page=True)

    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("[Flasky] New User")
    expect(page).to_have_title(re.compile(r"^\[Flasky\] New User"))
    status = page.locator(".email-fields .status")
    expect(status).to_have_text("failed")
    expect(page.locator(".last-error")).to_contain_text("550 5.7.1 rejected")
    body = page.frame_locator("iframe.email-html-body")
    expect(body.locator(".highlight")).to_have_text("Margaret")
    color = body.locator(".header").evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(255, 255, 255)", "the email's inlined styles are blocked in the frame"
    screenshot_with_email_frame(page, output_dir / "email-failed.png")

    page.get_by_role("button", name="Retry").click()  # the SMTP server now accepts
    expect(page.get_by_role("status")).to_contain_text("is queued again")
    reload_until(page, status, "sent")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    attempts = page.locator(".timeline .attempt")
    expect(attempts).to_have_count(2)  # the failure before the retry is kept
    expect(attempts.nth(0)).to_contain_text("550 5.7.1 rejected")
    expect(attempts.nth(0).locator(".attempt-outcome")).to_have_text("failed")
    expect(attempts.nth(1).locator(".attempt-outcome")).to_have_text("sent")
    expect(page.locator(".timeline .attempt-restart")).to_contain_text("Retried by an operator")
    screenshot_with_email_frame(page, output_dir / "email-sent.png")

    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [ADMIN]
    page.get_by_role("link", name="Outbox").click()
    expect(page.locator(".count[data-status='sent']")).to_have_text("1")
    page.screenshot(path=output_dir / "dashboard-sent.png", full_page=True)
    assert console_errors == []


def test_a_scheduled_email_shows_its_time_priority_recipients_and_attachments(
    app: Flask, page: Page, live_server: str, console_errors: list[str], output_dir: Path
) -> None:
    send_at = datetime.now(UTC) + timedelta(days=1)
    queue_email(
        app,
        cc="张伟 <zhang@example.com>",
        bcc="archive@example.com",
        reply_to="help@example.com",
        attachments=[("报告.pdf", "application/pdf", b"%PDF-1.4 " + bytes(2048))],
        send_at=send_at,
        priority="bulk",
        idempotency_key="digest:2026-11-27",
    )
    queue_email(app, priority="high")  # due now: no worker runs, it stays queued
    log_in(page, live_server)

    expect(page.locator(".count[data-filter='scheduled']")).to_have_text("1")
    expect(page.locator(".count[data-status='queued']")).to_have_text("2")
    rows = page.locator("table.emails tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".priority")).to_have_text("high")
    expect(rows.nth(0).locator(".scheduled-for")).to_have_count(0)
    expect(rows.nth(1).locator(".priority")).to_have_text("bulk")
    expect(rows.nth(1).locator(".scheduled-for")).to_contain_text(
        f"scheduled for {send_at:%Y-%m-%d}"
    )
    page.screenshot(path=output_dir / "dashboard-scheduled.png", full_page=True)

    page.get_by_role("link", name="scheduled", exact=True).click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".priority")).to_have_text("bulk")

    rows.first.get_by_role("link").first.click()
    fields = page.locator(".email-fields")
    expect(fields.locator(".cc")).to_have_text("张伟 <zhang@example.com>")
    expect(fields.locator(".bcc")).to_have_text("archive@example.com")
    expect(fields.locator(".reply-to")).to_have_text("help@example.com")
    expect(fields.locator(".idempotency-key")).to_have_text("digest:2026-11-27")
    expect(fields.locator(".send-at")).to_contain_text("scheduled, not yet due")
    expect(fields.locator(".attachments li")).to_have_text(
        "报告.pdf application/pdf, 2.0 KiB (2,057 bytes)"
    )
    screenshot_with_email_frame(page, output_dir / "email-scheduled.png")
    assert console_errors == []
