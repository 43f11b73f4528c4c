"""Browser fixtures: the app served over HTTP in a thread, and Chromium.

The browser is an installed Chromium (Debian's /usr/bin/chromium in CI, see .ci/run), or else
Playwright's own build, driven by Playwright (devtools/browser.py; `python3 dev.py test`
downloads Playwright's when it finds none and can).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from werkzeug.serving import make_server

from devtools.browser import how_to_get_chromium_here, installed_chromium
from tests.integration.admin_login import PASSWORD, USERNAME

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}

OpenPage = Callable[..., Page]


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 in a background thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test app (real database, Redis and SMTP server) over HTTP; its base URL."""
    with serve(app) as url:
        yield url


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for all the browser tests, closed when they are done (even on failure).

    Package scope, not session: while Playwright's sync API runs, the main thread counts as
    running an asyncio loop, so tests after these that start a loop of their own would fail.
    """
    chromium = installed_chromium()
    with sync_playwright() as playwright:
        if chromium is None and not Path(playwright.chromium.executable_path).is_file():
            pytest.fail(how_to_get_chromium_here())
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Errors logged by the test's pages: CSP violations, failed loads, uncaught exceptions."""
    return []


@pytest.fixture
def open_page(browser: Browser, console_errors: list[str]) -> Iterator[OpenPage]:
    """Open a page in a fresh browser context (own cookies); `options` go to new_context."""
    contexts = []

    def open_page(**options: Any) -> Page:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("console", lambda message: _record_console(message, console_errors))
        page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: OpenPage) -> Page:
    return open_page(viewport=DESKTOP)


def _record_console(message: ConsoleMessage, errors: list[str]) -> None:
    url = message.location.get("url", "")
    if url.endswith("/favicon.ico"):
        return  # the browser's own guess for a page without an icon link (an email, a text)
    if message.type == "error" or "Content Security Policy" in message.text:
        errors.append(f"console {message.type}: {message.text} ({url})")


def screenshot_with_email_frame(page: Page, path: Path) -> None:
    """A full-page screenshot of a page that shows an email's HTML in its sandboxed frame."""
    # Chromium paints a cross-origin (sandboxed) frame only once it has been in the viewport.
    page.locator("iframe.email-html-body").scroll_into_view_if_needed()
    page.screenshot(path=path, full_page=True)


def log_in(page: Page, live_server: str) -> None:
    """Log in at /admin/ as a person does, and wait for the dashboard."""
    page.goto(f"{live_server}/admin/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Outbox")).to_be_visible()
