"""Bad and unusual input: form errors instead of 500s, no header injection, escaped HTML, UTF-8."""

from __future__ import annotations

import email.policy
from email import message_from_bytes
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.redis_server import RedisServer
from devtools.smtp_server import SMTPServer
from tests.forms import post_name
from tests.integration.conftest import ADMIN, app_settings, emails
from web import create_app
from web.extensions import db
from web.limiter import limiter
from web.models import User
from web.outbox.api import send_email

EXPECTED_HEADERS = {
    "content-type",
    "mime-version",
    "subject",
    "from",
    "to",
    "date",
    "message-id",
}


def _users(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(db.select(User.username)))


def test_a_64_character_name_is_accepted(app: Flask, client: FlaskClient) -> None:
    assert post_name(client, "y" * 64).status_code == 302
    assert _users(app) == ["y" * 64]


def test_html_in_a_name_is_escaped_in_the_page_and_the_email(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    name = "<script>alert('x')</script> {{ 7*7 }}"
    assert post_name(client, name).status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    (message,) = smtp_server.wait_for_messages(1)
    parsed = message.parsed()
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(" in html
    assert name in text  # the text body shows the name as typed
    assert "49" not in text and "{{ 7*7 }}" in html  # user input is never a template


def test_chinese_name_is_utf8_in_subject_and_bodies(
    app: Flask, client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    assert post_name(client, "张伟").status_code == 302
    assert "Hello, 张伟!" in client.get("/").get_data(as_text=True)
    (message,) = smtp_server.wait_for_messages(1)
    parsed = message.parsed()
    assert "张伟" in parsed.get_body(("plain",)).get_content()
    assert "张伟" in parsed.get_body(("html",)).get_content()
    assert _users(app) == ["张伟"]


def test_utf8_subject_is_encoded_and_cr_lf_in_context_stays_in_the_body(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    with app.app_context():
        send_email(ADMIN, "新用户 ünïcode", "mail/new_user", name="Zed\r\nBcc: victim@example.com")
        db.session.commit()
    (message,) = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [ADMIN]
    header_block = message.raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii(), "headers must be RFC 2047 encoded"
    parsed = message_from_bytes(message.raw, policy=email.policy.default)
    assert {name.lower() for name in parsed} == EXPECTED_HEADERS
    assert parsed["Subject"] == "[Flasky] 新用户 ünïcode"
    assert "Zed" in parsed.get_body(("plain",)).get_content()


def test_a_name_with_padding_is_the_same_user(app: Flask, client: FlaskClient) -> None:
    post_name(client, "Walter")
    post_name(client, "  Walter ")
    assert _users(app) == ["Walter"]
    assert len(emails(app)) == 1


def _limited_app(app: Flask, redis_url: str, limit: str) -> Flask:
    """The app under test with a form limit (the limiter reads its settings at creation)."""
    settings = app_settings(
        app.config["SQLALCHEMY_DATABASE_URI"], redis_url, app.config["MAIL_PORT"]
    )
    return create_app(
        "testing", **settings, FLASKY_FORM_RATE_LIMIT=limit, RATELIMIT_STORAGE_URI=redis_url
    )


def test_the_form_is_rate_limited_per_client(app: Flask, redis_url: str) -> None:
    limited = _limited_app(app, redis_url, "3 per minute").test_client()
    for n in range(3):
        assert post_name(limited, f"Flooder {n}").status_code == 302
    response = post_name(limited, "Flooder 3")
    assert response.status_code == 429
    assert "too many names" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers
    assert _users(app) == ["Flooder 0", "Flooder 1", "Flooder 2"]
    assert len(emails(app)) == 3
    assert limited.get("/").status_code == 200  # reading the page is not limited


def test_the_form_limit_without_redis_still_answers(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process-wide limiter remembers that its storage died; put that back afterwards so
    # the apps of later tests count in their Redis again.
    monkeypatch.setattr(limiter, "_storage_dead", limiter._storage_dead)
    redis = RedisServer(tmp_path)  # started and stopped: nothing answers on its port now
    redis.start()
    redis.stop()
    limited = _limited_app(app, redis.url, "2 per minute").test_client()
    statuses = [post_name(limited, f"Offline {n}").status_code for n in range(3)]
    assert statuses == [302, 302, 429]  # counted in the process's memory meanwhile
    assert _users(app) == ["Offline 0", "Offline 1"]
