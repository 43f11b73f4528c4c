"""What the check asks of the running stack over HTTP, as a user, an operator and a mail reader
would: the name form, Mailpit's API, Flower's login and the web's readiness."""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import quote

from devtools.compose_check.report import CheckFailed
from devtools.webclient import Client, Reply, csrf_token

NEW_USER_SUBJECT = "New User"  # web/views.py's subject (after FLASKY_MAIL_SUBJECT_PREFIX)


def _csrf_token(page: str) -> str:
    try:
        return csrf_token(page)
    except ValueError:
        raise CheckFailed("the form's page has no CSRF token") from None


def post_name(site: Client, name: str) -> None:
    """GET / for the CSRF token and the session cookie, then POST the name, as a browser does."""
    page = site.get("/")
    if page.status != 200:
        raise CheckFailed(f"GET / answered {page.status}:\n{page.body[:500]}")
    reply = site.post_form("/", {"name": name, "csrf_token": _csrf_token(page.body)})
    if reply.status != 200 or html.escape(name) not in reply.body:
        raise CheckFailed(f"POST / of {name!r} answered {reply.status}:\n{reply.body[:500]}")


def find_email(mailpit: Client, *, to: str, name: str, timeout: float) -> dict[str, Any]:
    """The admin's email about `name`, from Mailpit's API: the list (Subject, To, ID), then the
    message itself (its text body names the new user). Polls until `timeout`."""
    deadline = time.monotonic() + timeout
    checked: set[str] = set()
    while True:
        listing = mailpit.get("/api/v1/messages?limit=200")
        if listing.status != 200:
            raise CheckFailed(f"Mailpit's /api/v1/messages answered {listing.status}")
        for summary in listing.json()["messages"]:
            addresses = [recipient["Address"] for recipient in summary["To"]]
            if summary["ID"] in checked or to not in addresses:
                continue
            if NEW_USER_SUBJECT not in summary["Subject"]:
                continue
            message = mailpit.get(f"/api/v1/message/{quote(summary['ID'])}").json()
            if name in message["Text"]:
                return message
            checked.add(summary["ID"])
        if time.monotonic() > deadline:
            raise CheckFailed(
                f"no email to {to} about {name!r} in Mailpit after {timeout:g}s "
                f"({listing.json()['total']} messages there)"
            )
        time.sleep(1)


def check_flower_login(anonymous: Client, logged_in: Client, timeout: float) -> str:
    """401 without the login, 200 with it, and the worker listed; returns the workers' names."""
    deadline = time.monotonic() + timeout
    for path in ("/", "/api/workers"):
        reply = anonymous.get(path)
        if reply.status != 401:
            raise CheckFailed(f"Flower {path} without a login answered {reply.status}, not 401")
    while True:
        reply = logged_in.get("/api/workers?refresh=1")
        if reply.status != 200:
            raise CheckFailed(f"Flower /api/workers with the login answered {reply.status}")
        workers = sorted(reply.json())
        if workers:
            front = logged_in.get("/")
            if front.status != 200:
                raise CheckFailed(f"Flower / with the login answered {front.status}")
            return ", ".join(workers)
        if time.monotonic() > deadline:
            raise CheckFailed(f"Flower lists no worker after {timeout:g}s")
        time.sleep(2)


def wait_for_status(site: Client, path: str, status: int, timeout: float) -> Reply:
    """Poll `path` until it answers `status`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = site.get(path)
            if reply.status == status:
                return reply
            seen = f"{reply.status} {reply.body[:200]}"
        except OSError as error:
            seen = str(error)
        if time.monotonic() > deadline:
            raise CheckFailed(f"{path} did not answer {status} within {timeout:g}s: {seen}")
        time.sleep(0.5)
