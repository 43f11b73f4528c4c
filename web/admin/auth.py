"""Who may use the admin area: one account from the environment, remembered in the session.

The account is `ADMIN_USERNAME` with `ADMIN_PASSWORD_HASH` (a werkzeug hash) or
`ADMIN_PASSWORD`; without them every login is refused. Both the username and the password are
compared in constant time, and always both, so that the answer's timing tells nothing.

The development login that `python3 dev.py` makes (devtools/dev_admin.py) is refused in every
configuration but development: its hash carries a marker in its salt, so an environment copied
from a dev run into a deployment opens nothing.

The session holds a fingerprint of the configured credentials (an HMAC under `SECRET_KEY`),
not a bare "logged in" flag: changing the admin's password or username ends every admin
session, and the cookie, which the browser can read, reveals nothing of the password.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal
from urllib.parse import urlsplit

from flask import current_app, session
from werkzeug.security import check_password_hash

from web.outbox.addresses import has_control_characters

_SESSION_KEY = "admin"

# The salt prefix of a development hash: devtools/dev_admin.py's DEV_SALT_PREFIX (a unit test
# keeps the two equal; the app does not import the development tools).
DEV_SALT_PREFIX = "flaskydev"

# Why nobody can log in: no account is set, or the only one is the development login.
NotConfigured = Literal["missing", "development-login"]


def is_configured() -> bool:
    return not_configured_reason() is None


def not_configured_reason() -> NotConfigured | None:
    """Why nobody can log in, or None when an admin account is set up for this configuration."""
    config = current_app.config
    password_hash = config["ADMIN_PASSWORD_HASH"]
    if not (config["ADMIN_USERNAME"] and (password_hash or config["ADMIN_PASSWORD"])):
        return "missing"
    if password_hash and is_dev_hash(password_hash) and config["CONFIG_NAME"] != "development":
        return "development-login"
    return None


def is_dev_hash(password_hash: str) -> bool:
    """True for the hash of the development login made by dev.py."""
    _method, _, rest = password_hash.partition("$")
    return rest.startswith(DEV_SALT_PREFIX)


def check_credentials(username: str, password: str) -> bool:
    """True if `username` and `password` are the configured admin's."""
    if not is_configured():
        return False
    config = current_app.config
    username_ok = hmac.compare_digest(username.encode(), config["ADMIN_USERNAME"].encode())
    if config["ADMIN_PASSWORD_HASH"]:
        password_ok = check_password_hash(config["ADMIN_PASSWORD_HASH"], password)
    else:
        password_ok = hmac.compare_digest(password.encode(), config["ADMIN_PASSWORD"].encode())
    return username_ok and password_ok


def log_in() -> None:
    """Start an admin session (a fresh one: nothing from before the login is kept)."""
    session.clear()
    session[_SESSION_KEY] = _fingerprint()


def log_out() -> None:
    session.pop(_SESSION_KEY, None)


def is_logged_in() -> bool:
    marker = session.get(_SESSION_KEY)
    return (
        isinstance(marker, str)
        and is_configured()
        and hmac.compare_digest(marker.encode(), _fingerprint().encode())
    )


def _fingerprint() -> str:
    config = current_app.config
    credentials = "\0".join(
        (config["ADMIN_USERNAME"], config["ADMIN_PASSWORD_HASH"] or config["ADMIN_PASSWORD"])
    )
    key = str(config["SECRET_KEY"]).encode()
    return hmac.new(key, credentials.encode(), hashlib.sha256).hexdigest()


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site (e.g. "/admin/?page=2"), else None.

    Refuses anything a browser could take to another site: absolute URLs, scheme-relative
    "//host", and backslashes (browsers read "/\\host" as "//host").
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or has_control_characters(target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None
