"""The admin account the integration tests log in with, an app that has it, and the login as a
browser posts it."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from tests.forms import csrf_token
from tests.integration.conftest import app_settings
from web import create_app

USERNAME = "operator"
PASSWORD = "correct horse battery staple"


def admin_app(database_url: str, redis_url: str, smtp_port: int, password: str = PASSWORD) -> Flask:
    """conftest's app settings with the admin account (its password as a hash, as in
    production), and the login limit counted in the test's Redis."""
    return create_app(
        "testing",
        **app_settings(database_url, redis_url, smtp_port),
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD_HASH=generate_password_hash(password),
        RATELIMIT_STORAGE_URI=redis_url,
    )


def log_in(
    client: FlaskClient,
    password: str = PASSWORD,
    username: str = USERNAME,
    next_: str | None = None,
) -> TestResponse:
    path = "/admin/login" + (f"?next={next_}" if next_ else "")
    token = csrf_token(client, "/admin/login")
    return client.post(path, data={"username": username, "password": password, "csrf_token": token})
