"""web/outbox/preview.py, /dev/mail: every email template with sample data, in development and
nowhere else."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.unit.conftest import make_app
from web.outbox.preview import SAMPLES, mail_templates


@pytest.fixture
def dev_app() -> Flask:
    return make_app("development")


def test_the_index_lists_the_templates_with_both_bodies(dev_app: Flask) -> None:
    with dev_app.app_context():
        assert mail_templates() == ["new_user", "test_email"]  # not base.html: no base.txt
    page = dev_app.test_client().get("/dev/mail/").get_data(as_text=True)
    for name in ("new_user", "test_email"):
        assert f'href="/dev/mail/{name}"' in page and f'href="/dev/mail/{name}.txt"' in page


def test_every_template_has_sample_data(dev_app: Flask) -> None:
    with dev_app.app_context():
        assert set(mail_templates()) == set(SAMPLES)


def test_html_preview_is_the_inlined_body(dev_app: Flask) -> None:
    response = dev_app.test_client().get("/dev/mail/new_user")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Ada Lovelace" in html
    assert "<style" not in html and 'style="' in html


def test_text_preview_is_plain_text(dev_app: Flask) -> None:
    response = dev_app.test_client().get("/dev/mail/new_user.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "A new user signed up on Flasky: Ada Lovelace" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/dev/mail/nope", "/dev/mail/nope.txt", "/dev/mail/base", "/dev/mail/base.txt"]
)
def test_unknown_templates_are_not_found(dev_app: Flask, path: str) -> None:
    assert dev_app.test_client().get(path).status_code == 404


@pytest.mark.parametrize("config_name", ["testing", "production"])
def test_no_preview_outside_development(config_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "a-production-key-for-the-tests-0123")
    client = make_app(config_name).test_client()
    for path in ("/dev/mail/", "/dev/mail/new_user", "/dev/mail/new_user.txt"):
        assert client.get(path).status_code == 404
