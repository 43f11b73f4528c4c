"""The name form in a real browser: greeting, flash message, form error, the admin's email."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools.smtp_server import SMTPServer
from tests.integration.browser.conftest import OpenPage
from tests.integration.conftest import ADMIN

pytestmark = pytest.mark.browser

NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def submit_name(page: Page, name: str) -> None:
    page.get_by_label("What is your name?").fill(name)
    page.get_by_role("button", name="Submit").click()
    page.wait_for_load_state()


def test_a_new_name_is_greeted_flashed_and_emailed_to_the_admin(
    page: Page,
    open_page: OpenPage,
    live_server: str,
    celery_worker: object,
    smtp_server: SMTPServer,
    console_errors: list[str],
    output_dir: Path,
) -> None:
    page.goto(live_server)
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Stranger!")
    page.screenshot(path=output_dir / "form.png", full_page=True)

    submit_name(page, "Ada")

    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Ada!")
    expect(page.get_by_text("Pleased to meet you!")).to_be_visible()
    flash = page.get_by_role("status")
    expect(flash).to_have_text("Thanks, Ada! The admin has been told.")
    expect(flash).to_have_class("flash flash-success")
    page.screenshot(path=output_dir / "greeted.png", full_page=True)

    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [ADMIN]
    html = message.parsed().get_body(("html",)).get_content()
    email_page = open_page(viewport={"width": 800, "height": 600})
    email_page.set_content(html)
    expect(email_page.locator(".highlight")).to_have_text("Ada")
    header_color = email_page.locator(".header").evaluate("e => getComputedStyle(e).color")
    assert header_color == "rgb(255, 255, 255)", "the email's inlined styles did not apply"
    email_page.screenshot(path=output_dir / "email.png", full_page=True)
    assert console_errors == []


def test_a_known_name_is_welcomed_back_without_a_flash(page: Page, live_server: str) -> None:
    page.goto(live_server)
    submit_name(page, "Grace")
    expect(page.get_by_role("status")).to_have_text("Thanks, Grace! The admin has been told.")

    submit_name(page, "Grace")

    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Grace!")
    expect(page.get_by_text("Happy to see you again!")).to_be_visible()
    expect(page.locator(".flash")).to_have_count(0)


def test_an_empty_name_shows_the_form_error(
    page: Page, live_server: str, console_errors: list[str], output_dir: Path
) -> None:
    page.goto(live_server)
    submit_name(page, "")

    expect(page.get_by_role("alert")).to_have_text("Please enter a name.")
    expect(page.locator("p.error")).to_have_count(1)
    name_input = page.get_by_label("What is your name?")
    expect(name_input).to_have_attribute("aria-invalid", "true")
    expect(name_input).to_have_accessible_description("Please enter a name.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Stranger!")
    page.screenshot(path=output_dir / "error.png", full_page=True)
    assert console_errors == []


def test_pages_load_only_their_own_assets_under_the_csp(
    page: Page, live_server: str, console_errors: list[str]
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    response = page.goto(live_server)
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]
    # The stylesheet loaded and applies: the header is coloured, the body is not in Times.
    header = page.locator(".site-header")
    assert header.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert "serif" not in page.evaluate("getComputedStyle(document.body).fontFamily").split(",")[0]
    submit_name(page, "Linus")
    submit_name(page, "")
    page.goto(f"{live_server}/no-such-page")

    assert requested, "no requests seen"
    foreign = [url for url in requested if not url.startswith(live_server)]
    assert foreign == []
    # The 404 of /no-such-page is logged as a failed load; anything else is a real problem.
    assert [e for e in console_errors if not e.endswith("/no-such-page)")] == []


def test_the_form_is_usable_on_a_phone(
    open_page: OpenPage, live_server: str, console_errors: list[str], output_dir: Path
) -> None:
    page = open_page(
        viewport={"width": 375, "height": 740},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page.goto(live_server)

    name_input = page.get_by_label("What is your name?")
    expect(name_input).to_be_visible()
    box = name_input.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert box["width"] >= 200, "the input should use the phone's width"
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    page.screenshot(path=output_dir / "mobile-form.png", full_page=True)

    name_input.tap()
    long_name = "W" * 64  # no space to break at: the page must wrap it, not scroll sideways
    name_input.fill(long_name)
    page.get_by_role("button", name="Submit").tap()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {long_name}!")
    expect(page.get_by_role("status")).to_be_visible()
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    page.screenshot(path=output_dir / "mobile-greeted.png", full_page=True)
    assert console_errors == []
