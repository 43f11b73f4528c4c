"""HTTP to servers running in other processes (the tests' and the compose check's), with the
standard library only."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class Reply:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """A small browser for one server: keeps its cookies, follows redirects.

    `auth=(user, password)` sends HTTP basic authentication with every request.
    """

    def __init__(
        self, base_url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers: dict[str, str] = {}
        if auth is not None:
            token = base64.b64encode(":".join(auth).encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        # Like browsers, which treat http://127.0.0.1 as a secure context: the production
        # config's session cookie is `Secure` and is sent back over plain HTTP to this host.
        cookies = CookieJar(DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))

    def get(self, path: str) -> Reply:
        return self._send(path, None)

    def post_form(self, path: str, fields: dict[str, str]) -> Reply:
        return self._send(path, urlencode(fields).encode())

    def answers(self, path: str, status: int = 200) -> bool:
        """Whether `path` answers with `status` now (False while nothing listens)."""
        return self.status(path) == status

    def status(self, path: str) -> int | None:
        """The status `path` answers with now; None while nothing answers."""
        try:
            return self.get(path).status
        except OSError:
            return None

    def _send(self, path: str, data: bytes | None) -> Reply:
        url = self.base_url + path
        request = urllib.request.Request(url, data=data, headers=self._headers)  # noqa: S310 - http only
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return Reply(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.read().decode(errors="replace"))


def csrf_token(page: str) -> str:
    """The form's CSRF token in `page`; ValueError if it has none."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    if not match:
        raise ValueError("no CSRF token in the page")
    return match.group(1)
