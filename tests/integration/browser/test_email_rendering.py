"""Emails as a person sees them: the development preview, and an email in a sandboxed frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from playwright.sync_api import Page, expect

from tests.integration.browser.conftest import OpenPage, serve
from web import create_app
from web.outbox.render import render_bodies
from web.security import shows_email_html

pytestmark = pytest.mark.browser

WHITE = "rgb(255, 255, 255)"
FRAME_PAGE = '<!doctype html><title>frame</title><iframe sandbox srcdoc="{{ html }}"></iframe>'


def _app(config_name: str) -> Flask:
    """An app that needs no services: these pages touch neither the database nor Redis."""
    return create_app(config_name, SQLALCHEMY_DATABASE_URI="sqlite://")


@pytest.fixture
def dev_server() -> Iterator[str]:
    with serve(_app("development")) as url:
        yield url


def header_color(page: Page) -> str:
    return page.locator(".header").evaluate("e => getComputedStyle(e).color")


def test_the_development_preview_shows_each_email(
    page: Page,
    open_page: OpenPage,
    dev_server: str,
    console_errors: list[str],
    output_dir: Path,
) -> None:
    page.goto(f"{dev_server}/dev/mail/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Email previews")
    expect(page.get_by_role("link", name="new_user", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="test_email", exact=True)).to_be_visible()
    page.screenshot(path=output_dir / "index.png", full_page=True)

    page.get_by_role("link", name="new_user", exact=True).click()
    expect(page.locator(".highlight")).to_have_text("Ada Lovelace")
    assert header_color(page) == WHITE, "inlined styles blocked by the CSP?"
    page.screenshot(path=output_dir / "new_user.png", full_page=True)

    phone = open_page(viewport={"width": 375, "height": 667}, is_mobile=True)
    phone.goto(f"{dev_server}/dev/mail/test_email")
    expect(phone.get_by_text("This is a test email from")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot(path=output_dir / "test_email-phone.png", full_page=True)

    response = page.goto(f"{dev_server}/dev/mail/new_user.txt")
    assert response is not None and response.headers["content-type"].startswith("text/plain")
    assert "A new user signed up on Flasky: Ada Lovelace" in page.inner_text("body")
    assert console_errors == []


def test_an_email_in_a_sandboxed_srcdoc_frame_keeps_its_styles(
    page: Page, console_errors: list[str], output_dir: Path
) -> None:
    """How the admin's email page shows a body: a srcdoc frame inherits the page's CSP."""
    app = _app("testing")

    def frame() -> str:
        _text, html = render_bodies("mail/new_user", name="Ada")
        return render_template_string(FRAME_PAGE, html=html)

    app.add_url_rule("/default-policy", "default_policy", frame)
    app.add_url_rule("/email-policy", "email_policy", shows_email_html(frame))

    with serve(app) as url:
        page.goto(f"{url}/default-policy")
        blocked = page.frame_locator("iframe").locator(".header")
        expect(blocked).to_have_text("Flasky")
        assert blocked.evaluate("e => getComputedStyle(e).color") != WHITE
        assert any("Content Security Policy" in error for error in console_errors)

        console_errors.clear()
        page.goto(f"{url}/email-policy")
        shown = page.frame_locator("iframe").locator(".header")
        expect(shown).to_have_text("Flasky")
        assert shown.evaluate("e => getComputedStyle(e).color") == WHITE
        page.screenshot(path=output_dir / "email-in-frame.png", full_page=True)
    assert console_errors == []
