"""Security headers on every response: a strict Content-Security-Policy and its companions.

The pages load nothing but their own stylesheet and icon: no inline script, no `style=`
attribute, nothing from another origin. A view may set its own Content-Security-Policy (see
`shows_email_html`); the hook only fills in the headers that a response does not set itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from flask import Flask, Response, make_response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
    "object-src 'none'"
)

# An email's HTML body carries its CSS in style attributes (web/outbox/render.py inlines it, as
# mail clients need). A page that shows one, directly or in an <iframe sandbox srcdoc=...>
# (a srcdoc frame inherits its parent's policy), allows style attributes and nothing more:
# <style> elements, scripts and every other directive stay as strict as everywhere else.
EMAIL_HTML_POLICY = CONTENT_SECURITY_POLICY + "; style-src-attr 'unsafe-inline'"

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

P = ParamSpec("P")


def add_security_headers(response: Response) -> Response:
    """`after_request` hook: add each security header that the response does not set itself."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def shows_email_html(view: Callable[P, object]) -> Callable[P, Response]:
    """Decorate a view whose page shows an email's HTML body: its response gets
    EMAIL_HTML_POLICY, so that the email's inlined styles apply."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        response = make_response(view(*args, **kwargs))
        response.headers["Content-Security-Policy"] = EMAIL_HTML_POLICY
        return response

    return wrapper


def register(app: Flask) -> None:
    app.after_request(add_security_headers)
