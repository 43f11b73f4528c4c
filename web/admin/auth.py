"""Who may use the admin area: one account from the environment, remembered in the session.

The account is `ADMIN_USERNAME` with `ADMIN_PASSWORD_HASH` (a werkzeug hash) or
`ADMIN_PASSWORD`; without them every login is refused. Both the username and the password are
compared in constant time, and always both, so that the answer's timing tells nothing.

The development login that `python3 dev.py` makes (devtools/dev_admin.py) is refused in every
configuration but development: its hash carries a marker in its salt, so an environment copied
from a dev run into a deployment opens nothing.

Sessions live on the server (the `admin_sessions` table): a login makes a random id, which
the signed cookie carries and the table keeps only as its SHA-256. Every admin request looks
the row up, so a session ends for good, whatever copies of the cookie exist, when

- the admin logs out (the row is deleted);
- the credentials change: the row holds a fingerprint of those it was opened with (an HMAC
  under `SECRET_KEY`, so rotating that key ends the sessions too);
- `ADMIN_SESSION_LIFETIME` has passed since the login, or `ADMIN_SESSION_IDLE_TIMEOUT` since
  the last request (recorded at most once a minute: a request costs a read, not a write).

A new login rotates the id (nothing from before the login is kept: session fixation) and
deletes the sessions nobody can use any more, so the table holds the live ones and a few
ended ones. The cookie itself expires when its session would (`SessionCookie`). A database
error is never taken for a session: the request fails, as the admin pages would anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from sqlalchemy import delete, or_, select, update
from werkzeug.security import check_password_hash

from web.extensions import db
from web.models import AdminSession, utcnow
from web.outbox.addresses import has_control_characters

V = TypeVar("V", bound=Callable[..., Any])

_SESSION_KEY = "admin"  # the session's id (the table holds its hash)
_COOKIE_ENDS_KEY = "admin_ends"  # when the browser should drop the cookie, in Unix time

# last_seen_at is written by a request that finds it older than this: one write a minute at
# most, however often the dashboard polls. The idle timeout is kept to within this too.
TOUCH_INTERVAL = timedelta(minutes=1)

# "ended": the cookie names a session that is over (logged out, expired, other credentials),
# or none there ever was.
SessionState = Literal["none", "live", "ended"]

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
    """Start an admin session under a new id, after deleting the sessions that have ended
    (this client's previous one among them)."""
    now = utcnow()
    fingerprint = _fingerprint()
    ended = or_(
        AdminSession.expires_at <= now,
        AdminSession.last_seen_at <= now - _idle_timeout(),
        AdminSession.fingerprint != fingerprint,
    )
    previous = session.get(_SESSION_KEY)
    if isinstance(previous, str):
        ended = or_(ended, AdminSession.id == _hash(previous))
    db.session.execute(delete(AdminSession).where(ended))
    session_id = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=current_app.config["ADMIN_SESSION_LIFETIME"])
    db.session.add(
        AdminSession(
            id=_hash(session_id),
            fingerprint=fingerprint,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )
    db.session.commit()
    session.clear()
    session.permanent = True
    session[_SESSION_KEY] = session_id
    _set_cookie_end(last_seen_at=now, expires_at=expires_at)


def log_out() -> None:
    """End the admin session: its row goes, so no copy of the cookie opens anything."""
    session_id = session.get(_SESSION_KEY)
    if isinstance(session_id, str):
        db.session.execute(delete(AdminSession).where(AdminSession.id == _hash(session_id)))
        db.session.commit()
    session.clear()
    session.permanent = False


def is_logged_in() -> bool:
    """True if the request carries a live admin session (see `session_state`)."""
    return session_state() == "live"


def session_state() -> SessionState:
    """Whether the request's cookie names a live admin session, an ended one, or none.

    An ended session leaves the cookie, and its row, if any, is deleted. A live one whose
    last_seen_at is older than TOUCH_INTERVAL gets it updated. A write is committed at once:
    this runs before the view, which may roll its own work back.
    """
    session_id = session.get(_SESSION_KEY)
    if session_id is None:
        return "none"
    if not isinstance(session_id, str):
        return _ended()
    key = _hash(session_id)
    row = db.session.execute(
        select(AdminSession.fingerprint, AdminSession.last_seen_at, AdminSession.expires_at).where(
            AdminSession.id == key
        )
    ).one_or_none()
    now = utcnow()
    if row is None or not _is_live(row.fingerprint, row.last_seen_at, row.expires_at, now):
        if row is not None:
            db.session.execute(delete(AdminSession).where(AdminSession.id == key))
            db.session.commit()
        return _ended()
    if now - row.last_seen_at >= TOUCH_INTERVAL and not _is_background_request():
        db.session.execute(
            update(AdminSession).where(AdminSession.id == key).values(last_seen_at=now)
        )
        db.session.commit()
        _set_cookie_end(last_seen_at=now, expires_at=row.expires_at)
    return "live"


def background(view: V) -> V:
    """Mark a view that a page polls by itself (the dashboard's refresh): its requests need a
    live session but are not the admin's activity, so a dashboard left open still ends after
    the idle timeout."""
    view.is_background = True  # type: ignore[attr-defined]
    return view


def _is_background_request() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "is_background", False)


def _ended() -> SessionState:
    """Drop the ended session's id from the cookie, which ends with the browser again."""
    session.pop(_SESSION_KEY, None)
    session.pop(_COOKIE_ENDS_KEY, None)
    session.permanent = False
    return "ended"


def _is_live(fingerprint: str, last_seen_at: datetime, expires_at: datetime, now: datetime) -> bool:
    return (
        now < expires_at
        and now < last_seen_at + _idle_timeout()
        and is_configured()
        and hmac.compare_digest(fingerprint.encode(), _fingerprint().encode())
    )


def _idle_timeout() -> timedelta:
    return timedelta(seconds=current_app.config["ADMIN_SESSION_IDLE_TIMEOUT"])


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _set_cookie_end(*, last_seen_at: datetime, expires_at: datetime) -> None:
    """Tell the browser to drop the cookie when the server would refuse it: at the absolute end,
    or after the idle timeout, whichever comes first."""
    ends = min(expires_at, last_seen_at + _idle_timeout())
    session[_COOKIE_ENDS_KEY] = int(ends.replace(tzinfo=UTC).timestamp())


class SessionCookie(SecureCookieSessionInterface):
    """Flask's signed session cookie; one that carries an admin session expires when that
    session would end if no request came first (the end `_set_cookie_end` stored in it). Other
    sessions, such as the name form's CSRF token, stay cookies that end with the browser."""

    def get_expiration_time(self, app: Flask, session: SessionMixin) -> datetime | None:
        ends = session.get(_COOKIE_ENDS_KEY)
        if session.permanent and isinstance(ends, int):
            return datetime.fromtimestamp(ends, UTC)
        return super().get_expiration_time(app, session)


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
