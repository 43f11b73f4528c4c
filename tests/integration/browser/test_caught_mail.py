"""The development doors in a real browser: the caught mail at /dev/inbox/, and /admin opened
with the login that dev.py makes and prints."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

import dev
from devtools import dev_admin
from devtools.smtp_catcher import SmtpCatcher
from devtools.waiting import wait_until
from tests.integration.browser.conftest import screenshot_with_email_frame, serve
from tests.integration.browser.test_name_form import submit_name
from tests.integration.conftest import ADMIN, app_settings, migrate
from tests.integration.outbox_rows import queue_email
from web import create_app
from web.caught_mail import folder
from web.extensions import db

pytestmark = pytest.mark.browser

WHITE = "rgb(255, 255, 255)"
REPORT = ("报告.pdf", "application/pdf", b"%PDF-1.4 " + bytes(2048))


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A migrated SQLite database of this test's own: what these pages show does not depend on
    the database, so they run once, not on each."""
    url = f"sqlite:///{tmp_path / 'flasky.sqlite'}"
    migrate(url)
    return url


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def catcher(maildir: Path) -> Iterator[SmtpCatcher]:
    """The real development SMTP catcher, as dev.py runs it: each message an .eml file."""
    with SmtpCatcher(maildir) as catcher:
        yield catcher


@pytest.fixture
def app(database: str, redis_url: str, catcher: SmtpCatcher, maildir: Path) -> Iterator[Flask]:
    """The development app sending to the catcher, /dev/inbox/ reading the catcher's folder."""
    app = create_app(
        "development",
        **app_settings(database, redis_url, catcher.port),
        DEV_SMTP_MAILDIR=str(maildir),
        RATELIMIT_STORAGE_URI=redis_url,
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_mail_sent_through_the_pipeline_is_shown_in_the_inbox(
    app: Flask,
    page: Page,
    live_server: str,
    celery_worker: object,
    maildir: Path,
    console_errors: list[str],
    output_dir: Path,
) -> None:
    page.goto(live_server)
    submit_name(page, "Ada")  # the admin is emailed: outbox, Redis, worker, SMTP, catcher
    expect(page.get_by_role("status")).to_have_text("Thanks, Ada! The admin has been told.")
    wait_until(lambda: len(folder.caught_files(maildir)) == 1, 30, "the new-user email")
    queue_email(app, attachments=[REPORT])  # then a test email with an attachment
    wait_until(lambda: len(folder.caught_files(maildir)) == 2, 30, "the test email")

    page.goto(f"{live_server}/dev/mail/")
    page.get_by_role("link", name="caught mail").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Caught mail")
    rows = page.locator("table.caught-mail tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".subject")).to_have_text("[Flasky] Test")  # newest first
    expect(rows.nth(1).locator(".subject")).to_have_text("[Flasky] New User")
    expect(rows.nth(1).locator(".to")).to_have_text(ADMIN)
    received = rows.nth(1).locator("time")  # in the browser's zone, UTC in the title
    expect(received).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d [\d:]{8} \S+$"))
    expect(received).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d [\d:]{8} UTC$"))
    page.screenshot(path=output_dir / "inbox.png", full_page=True)

    rows.nth(1).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("[Flasky] New User")
    expect(page.locator(".email-text-body")).to_contain_text("A new user signed up on Flasky: Ada")
    body = page.frame_locator("iframe.email-html-body")
    expect(body.locator(".highlight")).to_have_text("Ada")
    color = body.locator(".header").evaluate("e => getComputedStyle(e).color")
    assert color == WHITE, "the email's inlined styles are blocked in the frame"
    assert page.locator("iframe.email-html-body").get_attribute("sandbox") == ""
    expect(page.locator("table.headers")).to_contain_text("Message-ID")
    screenshot_with_email_frame(page, output_dir / "new-user-email.png")

    page.get_by_role("link", name="All caught mail").click()
    rows.nth(0).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("[Flasky] Test")
    link = page.locator(".attachments a.attachment-name")
    expect(link).to_have_text("报告.pdf")
    expect(page.locator(".attachments .attachment-meta")).to_have_text(
        "application/pdf, 2,057 bytes"
    )
    screenshot_with_email_frame(page, output_dir / "test-email-with-attachment.png")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == "报告.pdf"
    assert Path(download.path()).read_bytes() == REPORT[2]
    assert console_errors == []


def dev_py_login(instance: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], str]:
    """dev.py's environment for `instance` (as a developer's shell without admin settings
    gives it) and the login its banner prints."""
    with monkeypatch.context() as patch:
        for name in ("FLASKY_CONFIG", *dev_admin.ADMIN_VARIABLES):
            patch.delenv(name, raising=False)
        env = dev.build_env(argparse.Namespace(smtp_port=1025), instance)
    return env, dev.admin_login(env, instance)


def test_the_dev_login_that_dev_py_prints_opens_the_admin(
    database: str,
    page: Page,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    console_errors: list[str],
    output_dir: Path,
) -> None:
    env, banner = dev_py_login(tmp_path / "instance", monkeypatch)
    match = re.fullmatch(r"login: (\S+) / (\S+)", banner)
    assert match, banner
    username, password = match.groups()
    app = create_app(
        "development",
        SQLALCHEMY_DATABASE_URI=database,
        CELERY={"broker_url": "memory://"},
        RATELIMIT_STORAGE_URI="memory://",
        ADMIN_USERNAME=env["ADMIN_USERNAME"],
        ADMIN_PASSWORD_HASH=env["ADMIN_PASSWORD_HASH"],
    )
    with serve(app) as url:
        page.goto(f"{url}/admin/")
        expect(page).to_have_url(f"{url}/admin/login?next=/admin/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
        expect(page.get_by_text("not configured")).to_have_count(0)
        page.screenshot(path=output_dir / "login-wrong-password.png", full_page=True)

        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Outbox")).to_be_visible()
        page.screenshot(path=output_dir / "dashboard.png", full_page=True)
    with app.app_context():
        db.engine.dispose()
    assert console_errors == []


@pytest.mark.parametrize("config_name", ["development", "production"])
def test_without_an_admin_the_login_page_says_how_to_set_one_up(
    config_name: str,
    page: Page,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    console_errors: list[str],
    output_dir: Path,
) -> None:
    """No admin in development; in production, only dev.py's login, which it refuses."""
    env, _banner = dev_py_login(tmp_path / "instance", monkeypatch)
    admin = {"ADMIN_USERNAME": None, "ADMIN_PASSWORD_HASH": None, "ADMIN_PASSWORD": None}
    if config_name == "production":
        admin.update(
            ADMIN_USERNAME=env["ADMIN_USERNAME"], ADMIN_PASSWORD_HASH=env["ADMIN_PASSWORD_HASH"]
        )
        monkeypatch.setenv("SECRET_KEY", "a-production-key-for-the-tests-0123")
    app = create_app(
        config_name,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        RATELIMIT_STORAGE_URI="memory://",
        SESSION_COOKIE_SECURE=False,  # served over plain HTTP here
        **admin,
    )
    with serve(app) as url:
        page.goto(f"{url}/admin/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Admin login")
        expect(page.get_by_role("status")).to_contain_text("The admin is not configured")
        expect(page.get_by_role("status")).to_contain_text("ADMIN_PASSWORD_HASH")
        expect(page.get_by_role("alert")).to_have_count(0)
        expect(page.locator("form")).to_have_count(0)
        page.screenshot(path=output_dir / "login-not-configured.png", full_page=True)
    assert console_errors == []
