"""The name form through a Flask test client: what a visitor's browser sends."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, f"no CSRF token in {path}"
    return match.group(1)


def post_name(client: FlaskClient, name: str) -> TestResponse:
    return client.post("/", data={"name": name, "csrf_token": csrf_token(client)})
