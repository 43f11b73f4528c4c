"""web/security.py: every response carries the security headers; no page needs more than the
strict policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from tests.unit.conftest import make_app
from web.security import CONTENT_SECURITY_POLICY, EMAIL_HTML_POLICY

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@pytest.fixture
def dev_app() -> Flask:
    return make_app("development")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/static/style.css", 200),
        ("GET", "/no-such-page", 404),
        ("POST", "/", 400),  # no CSRF token
        ("GET", "/dev/mail/", 200),
        ("GET", "/dev/mail/new_user.txt", 200),
    ],
)
def test_every_response_has_the_security_headers(
    dev_app: Flask, method: str, path: str, status: int
) -> None:
    response = dev_app.test_client().open(path, method=method)
    assert response.status_code == status
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    for name, value in HEADERS.items():
        assert response.headers[name] == value


def test_a_page_showing_an_email_allows_only_style_attributes_more(dev_app: Flask) -> None:
    response = dev_app.test_client().get("/dev/mail/new_user")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == EMAIL_HTML_POLICY
    assert EMAIL_HTML_POLICY == CONTENT_SECURITY_POLICY + "; style-src-attr 'unsafe-inline'"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "template",
    sorted(p for p in (ROOT / "templates").rglob("*.html") if "mail" not in p.parts),
    ids=lambda p: str(p.relative_to(ROOT / "templates")),
)
def test_page_templates_need_no_inline_script_or_style(template: Path) -> None:
    """The CSP blocks inline scripts and styles; only the email templates have a <style>.

    A script is an empty <script src=...> of a static file (script-src 'self')."""
    source = template.read_text().lower()
    source = re.sub(
        r"<script src=\"\{\{ url_for\('static', filename='[\w.-]+'\) \}\}\" defer></script>",
        "",
        source,
    )
    for forbidden in ("<script", "<style", "style=", "javascript:"):
        assert forbidden not in source


def test_the_stylesheet_loads_nothing_from_elsewhere() -> None:
    css = (ROOT / "static" / "style.css").read_text().lower()
    assert "@import" not in css and "url(" not in css and "@font-face" not in css
