"""What every request and response goes through: the proxy headers believed, the Host checked,
the body's size bounded, and security headers on the way out.

The pages load nothing but their own stylesheet and icon: no inline script, no `style=`
attribute, nothing from another origin. A view may set its own Content-Security-Policy (see
`shows_email_html`); the hook only fills in the headers that a response does not set itself.

The limits themselves are settings (web/config.py: FLASKY_TRUSTED_HOSTS, FLASKY_PROXY_HOPS,
FLASKY_MAX_REQUEST_BYTES), enforced by Flask and Werkzeug; this module answers their refusals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from flask import Flask, Response, make_response, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge, SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)

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


# Blueprints whose pages show emails or the admin's data: no browser or proxy keeps a copy
# (the back button after logging out, a shared computer's disk cache).
NO_STORE_BLUEPRINTS = frozenset({"admin", "inbox"})


def no_store(response: Response) -> Response:
    """`after_request` hook: Cache-Control: no-store on the pages of NO_STORE_BLUEPRINTS."""
    if request.blueprint in NO_STORE_BLUEPRINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    """A body over FLASKY_MAX_REQUEST_BYTES (or a form with too many parts): refused before the
    view ran, with a page rather than Werkzeug's bare error."""
    return render_template("too_large.html"), 413


def refuse_untrusted_host() -> None:
    """First `before_request` hook: a request for a Host outside FLASKY_TRUSTED_HOSTS (Flask
    found it so while routing) stops here, before any other hook (the CSRF check, the rate
    limits) or view sees it."""
    if isinstance(request.routing_exception, SecurityError):
        raise request.routing_exception


def untrusted_host(error: SecurityError) -> tuple[str, int, dict[str, str]]:
    """A Host (or a believed X-Forwarded-Host) outside FLASKY_TRUSTED_HOSTS: 400, and a plain
    text answer, since no URL can be built for a host the app does not serve."""
    host = request.environ.get("HTTP_HOST")
    log.warning("refused a request for host %r: it is not in FLASKY_TRUSTED_HOSTS", host)
    body = "400 Bad Request: this site does not answer to that host name.\n"
    return body, 400, {"Content-Type": "text/plain; charset=utf-8"}


def register(app: Flask) -> None:
    hops = app.config["FLASKY_PROXY_HOPS"]
    if hops:
        # Behind `hops` proxies, each adding its X-Forwarded-* values: the client's address
        # (the rate limits), the scheme (https links, Secure cookies) and the Host as the
        # client sent it, which TRUSTED_HOSTS then checks. Without proxies the headers are
        # anyone's to forge, so they are ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_untrusted_host)
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_error_handler(SecurityError, untrusted_host)
    app.after_request(no_store)
    app.after_request(add_security_headers)
