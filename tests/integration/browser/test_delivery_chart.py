"""The dashboard's delivery charts in Chromium: drawn within the CSP on a desktop and on a phone,
refreshed without a reload, quiet while the tab is hidden, and patient with a server that is
down."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, Request, expect

from tests.integration.admin_login import PASSWORD, USERNAME
from tests.integration.browser.conftest import DESKTOP, OpenPage, log_in, serve
from tests.integration.outbox_rows import add_attempts, add_emails
from web.models import utcnow

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
CHARTS = ["#chart-hour-svg", "#chart-day-svg", "#chart-backlog-svg"]


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` with an admin account."""
    app.config.update(
        ADMIN_USERNAME=USERNAME, ADMIN_PASSWORD=PASSWORD, ADMIN_LOGIN_RATE_LIMIT="100 per minute"
    )
    return app


def fill_outbox(app: Flask) -> None:
    """A morning's work: sends, retries and failures over the last day, and a backlog."""
    now = utcnow()
    (sent,) = add_emails(app, status="sent", sent_at=now)
    add_attempts(
        app,
        sent,
        [(now - timedelta(minutes=m), "sent") for m in (1, 2, 2, 3, 7, 7, 7, 12, 30, 44, 58)]
        + [(now - timedelta(minutes=m), "retry") for m in (2, 7, 20, 90, 300)]
        + [(now - timedelta(minutes=m), "failed") for m in (7, 400)]
        + [(now - timedelta(hours=h), "sent") for h in (2, 3, 3, 5, 8, 13, 13, 13, 20, 23)],
    )
    add_emails(app, 4, priority="high")
    add_emails(app, 2, priority="normal", status="retrying", next_attempt_at=now)
    add_emails(app, 9, priority="bulk")
    add_emails(app, priority="bulk", status="sending")


def right_edge(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box["x"] + box["width"]


def test_the_chart_is_drawn_and_refreshes_without_a_reload(
    app: Flask, page: Page, live_server: str, console_errors: list[str], output_dir: Path
) -> None:
    fill_outbox(app)
    log_in(page, live_server)
    for chart in CHARTS:
        expect(page.locator(chart)).to_be_visible()
        assert right_edge(page, chart) <= DESKTOP["width"]
    hour = page.locator("#chart-hour")
    expect(hour.locator(".totals")).to_have_text("11 sent, 3 retried, 1 failed")
    expect(page.locator("#chart-day .totals")).to_have_text("21 sent, 5 retried, 2 failed")
    expect(page.locator("#chart-backlog .totals")).to_have_text(
        "13 queued (due), 2 retrying, 1 sending"
    )
    assert hour.locator("rect.bar").count() == 12  # one per outcome of each busy minute
    page.locator("#activity-heading").scroll_into_view_if_needed()
    page.screenshot(path=output_dir / "chart-1280.png")
    page.screenshot(path=output_dir / "chart-1280-full.png", full_page=True)

    page.evaluate("window.notReloaded = true")
    (new,) = add_emails(app, priority="high")
    add_attempts(app, new, [(utcnow(), "failed")])
    expect(hour.locator(".totals")).to_have_text("11 sent, 3 retried, 2 failed", timeout=15_000)
    expect(page.locator(".status-counts .count[data-status='queued']")).to_have_text("14")
    expect(page.locator("#chart-backlog .totals")).to_have_text(
        "14 queued (due), 2 retrying, 1 sending"
    )
    expect(page.locator(".refresh-note")).to_contain_text("Updated")
    assert page.evaluate("window.notReloaded") is True
    page.locator("#activity-heading").scroll_into_view_if_needed()
    page.screenshot(path=output_dir / "chart-1280-refreshed.png")
    assert console_errors == []


def test_the_chart_fits_a_phone(
    app: Flask, open_page: OpenPage, live_server: str, console_errors: list[str], output_dir: Path
) -> None:
    fill_outbox(app)
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(page, live_server)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    for chart in CHARTS:
        page.locator(chart).scroll_into_view_if_needed()
        expect(page.locator(chart)).to_be_visible()
        assert right_edge(page, chart) <= PHONE["width"]
    # The charts' 13px text stays readable once scaled to the phone's width.
    size = page.locator("#chart-hour-svg .x-label").first.bounding_box()["height"]
    assert size >= 9
    page.locator("#activity-heading").scroll_into_view_if_needed()
    page.screenshot(path=output_dir / "chart-phone.png")
    page.screenshot(path=output_dir / "chart-phone-full.png", full_page=True)
    assert console_errors == []


def test_polling_stops_while_hidden_and_slows_down_while_the_server_is_away(
    app: Flask, open_page: OpenPage, console_errors: list[str], output_dir: Path
) -> None:
    """On the page's own clock (Playwright's fake timers): its seconds pass at once, and the
    requests it makes are real."""
    polls: list[float] = []

    def count(request: Request) -> None:
        if request.url.endswith("/admin/activity"):
            polls.append(time.monotonic())

    def polls_after(step_ms: int, steps: int = 1) -> int:
        """Let `steps` × `step_ms` pass on the page's clock, each step's request (if any) and
        its answer settled in real time; return how many polls there were in all."""
        for _ in range(steps):
            before = len(polls)
            page.clock.run_for(step_ms)
            page.wait_for_timeout(150)  # a request due in the step has been sent by now
            if len(polls) > before:
                page.wait_for_timeout(250)  # and answered (or refused)
        return len(polls)

    page = open_page(viewport=DESKTOP)
    page.on("request", count)
    page.clock.install()
    with serve(app) as url:
        log_in(page, url)
        assert polls_after(5_500) >= 1, "no refresh after 5 s"

        page.evaluate(
            """() => {
                Object.defineProperty(document, "hidden", {value: true, configurable: true});
                document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
        hidden = len(polls)
        assert polls_after(1_000, steps=7) == hidden, "polled while the tab was hidden"

        page.evaluate(
            """() => {
                Object.defineProperty(document, "hidden", {value: false, configurable: true});
                document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
        page.wait_for_timeout(500)
        assert len(polls) == hidden + 1, "no refresh at once when shown again"

    down = len(polls)
    # Every 5 s that would be 4 attempts; waiting twice as long after each failure, 2 at most.
    polls_after(1_000, steps=20)
    assert len(polls) - down <= 2, f"{len(polls) - down} polls in 20 s with the server down"
    assert len(polls) - down >= 1, "no attempt in 20 s with the server down"
    expect(page.locator(".refresh-note")).to_contain_text("Not updated since")
    expect(page.locator(".refresh-note")).to_contain_text("no answer from the server")
    page.locator("#activity-heading").scroll_into_view_if_needed()
    page.screenshot(path=output_dir / "chart-server-down.png")
    failed_loads = [e for e in console_errors if "ERR_CONNECTION_REFUSED" in e]
    assert len(failed_loads) <= 2
    assert [e for e in console_errors if e not in failed_loads] == []
