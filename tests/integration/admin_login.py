"""The admin account the integration tests log in with, and the login as a browser posts it."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.forms import csrf_token

USERNAME = "operator"
PASSWORD = "correct horse battery staple"


def log_in(
    client: FlaskClient,
    password: str = PASSWORD,
    username: str = USERNAME,
    next_: str | None = None,
) -> TestResponse:
    path = "/admin/login" + (f"?next={next_}" if next_ else "")
    token = csrf_token(client, "/admin/login")
    return client.post(path, data={"username": username, "password": password, "csrf_token": token})
