"""The load a scenario puts on the stack: browsers posting the name form, and in-process sends."""

from __future__ import annotations

import http.client
import re
import threading
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from flask import Flask
from sqlalchemy.exc import OperationalError

from tests.integration.conftest import ADMIN
from web.extensions import db
from web.outbox.api import send_email

_CSRF_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class FormClient:
    """One browser on the web server: its own cookie jar and CSRF token, no redirects followed."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, text

    def csrf_token(self) -> str:
        status, page = self.request("GET", "/")
        match = _CSRF_TOKEN.search(page)
        assert status == 200 and match, f"GET / answered {status} without a CSRF token"
        return match.group(1)

    def post_name(self, name: str, token: str | None = None) -> tuple[int, float]:
        """POST the name form; return the status and how long the POST took (seconds)."""
        form = {"name": name, "csrf_token": token or self.csrf_token()}
        started = time.monotonic()
        status, _ = self.request("POST", "/", form)
        return status, time.monotonic() - started


def send_in_process(app: Flask, name: str, tries: int = 3) -> bool:
    """`send_email` + commit in an app context, as application code does; True if committed.

    A commit that fails on a dead database connection is tried again on a new one (the app
    pings pooled connections first), as a careful caller would.
    """
    with app.app_context():
        for _ in range(tries):
            try:
                send_email(ADMIN, "Fault batch", "mail/new_user", name=name)
                db.session.commit()
                return True
            except OperationalError:
                db.session.rollback()
        return False


class Batch:
    """Sends `total` emails from a background thread: every `web_every`-th through the web form."""

    def __init__(self, app: Flask, web_port: int, total: int, prefix: str, web_every: int = 5):
        self.app = app
        self.web_port = web_port
        self.total = total
        self.prefix = prefix
        self.web_every = web_every
        self.committed = 0
        self.web_posts = 0
        self.web_failures: list[str] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"batch-{prefix}", daemon=True)

    def start(self) -> Batch:
        self._thread.start()
        return self

    def _run(self) -> None:
        client = FormClient(self.web_port)
        try:
            for i in range(self.total):
                name = f"{self.prefix}-{i}"
                if i % self.web_every == 0:
                    self.web_posts += 1
                    status, _ = client.post_name(name)
                    if status == 302:
                        self.committed += 1
                    else:
                        self.web_failures.append(f"{name}: HTTP {status}")
                elif send_in_process(self.app, name):
                    self.committed += 1
        except BaseException as exc:  # reported by finish(), in the test's thread
            self.error = exc

    def finish(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the batch did not finish within {timeout}s"
        if self.error is not None:
            raise AssertionError(f"the batch failed: {self.error!r}") from self.error
