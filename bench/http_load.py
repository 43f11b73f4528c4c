"""The name form's POST, timed from the client: sequential or from several concurrent clients.

Each request first GETs the page on the same keep-alive connection for the session cookie and
the CSRF token (not timed), then POSTs a name never used before and times only the POST, up to
its 302 answer read in full.
"""

from __future__ import annotations

import http.client
import itertools
import re
import threading
import time
import uuid
from urllib.parse import urlencode

_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _session_cookie(response: http.client.HTTPResponse) -> str:
    for header in response.headers.get_all("Set-Cookie") or []:
        if header.startswith("session="):
            return header.split(";", 1)[0]
    raise RuntimeError("the page set no session cookie")


def timed_post(port: int) -> float:
    """One POST of a new name; its latency in seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/")
        page = conn.getresponse()
        html = page.read().decode()
        match = _TOKEN.search(html)
        if page.status != 200 or match is None:
            raise RuntimeError(f"GET / answered {page.status} without a CSRF token")
        body = urlencode({"csrf_token": match.group(1), "name": f"b{uuid.uuid4().hex[:20]}"})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": _session_cookie(page),
        }
        start = time.perf_counter()
        conn.request("POST", "/", body, headers)
        answer = conn.getresponse()
        answer.read()
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    if answer.status != 302:
        raise RuntimeError(f"POST / answered {answer.status}, expected a 302 redirect")
    return elapsed


def run(port: int, requests: int, clients: int) -> list[float]:
    """`requests` POSTs from `clients` concurrent clients (1: sequential); their latencies."""
    counter = itertools.count()
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        while next(counter) < requests and not errors:
            try:
                latency = timed_post(port)
            except Exception as exc:  # reported after the run
                errors.append(exc)
                return
            with lock:
                latencies.append(latency)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return latencies
