"""Server-side admin sessions (web/admin/auth.py): logout and a password change end them, and
so do the absolute lifetime and the idle timeout; the cookie expires with its session.

A "copy" is another client given the same cookie value: what an attacker who read the cookie
(a shared computer, a proxy log, a backup of the browser profile) would hold.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError
from werkzeug.security import generate_password_hash

from devtools.smtp_server import SMTPServer
from tests.forms import csrf_token
from tests.integration.admin_login import PASSWORD, USERNAME, admin_app, log_in
from tests.integration.conftest import app_settings
from web import create_app
from web.extensions import db
from web.models import AdminSession, utcnow

ENDED = "Your session has ended: log in again."


@pytest.fixture
def app(database_url: str, redis_url: str, smtp_server: SMTPServer) -> Iterator[Flask]:
    app = admin_app(database_url, redis_url, smtp_server.port)
    with app.app_context():
        db.session.execute(delete(AdminSession))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    assert log_in(client).status_code == 302
    return client


def _copy(client: FlaskClient, app: Flask) -> FlaskClient:
    """A client of `app` holding `client`'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def _session_id(client: FlaskClient) -> str | None:
    with client.session_transaction() as session:
        return session.get("admin")


def _rows(app: Flask) -> list[AdminSession]:
    with app.app_context():
        rows = list(db.session.scalars(select(AdminSession)))
        db.session.expunge_all()
        return rows


def _opens(client: FlaskClient) -> bool:
    """True if the client's cookie opens the dashboard; False if it is sent to log in."""
    status = client.get("/admin/").status_code
    assert status in (200, 302)
    return status == 200


def _log_out(client: FlaskClient) -> None:
    token = csrf_token(client, "/admin/")
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302


def test_a_cookie_copied_before_logout_opens_nothing_after_it(
    app: Flask, admin: FlaskClient
) -> None:
    copy = _copy(admin, app)
    assert _opens(copy)
    _log_out(admin)
    assert not _opens(admin)
    assert not _opens(copy)
    assert _rows(app) == []
    assert ENDED in copy.get("/admin/login").text


def test_the_cookie_after_logout_holds_no_session(admin: FlaskClient) -> None:
    _log_out(admin)
    assert _session_id(admin) is None
    assert admin.get_cookie("session").expires is None  # an ordinary browser-session cookie


def test_a_password_change_ends_every_session(
    app: Flask, admin: FlaskClient, database_url: str, redis_url: str, smtp_server: SMTPServer
) -> None:
    """The new password is a new deployment: another app, the same database and SECRET_KEY."""
    changed = admin_app(database_url, redis_url, smtp_server.port, password="a new password")
    try:
        copy = _copy(admin, changed)
        assert not _opens(copy)
        assert ENDED in copy.get("/admin/login").text
        assert _rows(app) == []  # deleted: changing the password back revives nothing
        assert not _opens(admin)  # nor on a process still running with the old password
        assert log_in(changed.test_client(), password="a new password").status_code == 302
    finally:
        with changed.app_context():
            db.engine.dispose()


def test_the_same_password_in_another_process_keeps_the_session(
    app: Flask, admin: FlaskClient, database_url: str, redis_url: str, smtp_server: SMTPServer
) -> None:
    """Every web process reads the same credentials: a session opened on one works on all."""
    other = create_app(
        "testing",
        **app_settings(database_url, redis_url, smtp_server.port),
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD_HASH=app.config["ADMIN_PASSWORD_HASH"],
    )
    try:
        assert _opens(_copy(admin, other))
    finally:
        with other.app_context():
            db.engine.dispose()


def test_a_session_ends_at_its_absolute_lifetime_however_busy(
    app: Flask, client: FlaskClient, shift_clock: Callable[[timedelta], None]
) -> None:
    app.config.update(ADMIN_SESSION_LIFETIME=2 * 3600, ADMIN_SESSION_IDLE_TIMEOUT=3600)
    assert log_in(client).status_code == 302
    for minutes in (50, 100, 119):  # never idle for an hour
        shift_clock(timedelta(minutes=minutes))
        assert _opens(client), minutes
    shift_clock(timedelta(minutes=121))
    assert not _opens(client)
    assert ENDED in client.get("/admin/login").text


def test_a_session_ends_after_the_idle_timeout(
    app: Flask, admin: FlaskClient, shift_clock: Callable[[timedelta], None]
) -> None:
    assert app.config["ADMIN_SESSION_IDLE_TIMEOUT"] == 3600  # the default
    shift_clock(timedelta(minutes=58))
    assert _opens(admin)  # 58 minutes idle: still open, and now seen again
    shift_clock(timedelta(minutes=58 + 59))
    assert _opens(admin)
    shift_clock(timedelta(minutes=58 + 59 + 61))
    assert not _opens(admin)
    assert _rows(app) == []


def test_the_dashboards_own_refresh_does_not_keep_the_session_alive(
    app: Flask, admin: FlaskClient, shift_clock: Callable[[timedelta], None]
) -> None:
    """A dashboard left open polls /admin/activity every few seconds: that is not the admin."""
    for minutes in (20, 40, 59):
        shift_clock(timedelta(minutes=minutes))
        assert admin.get("/admin/activity").status_code == 200
    shift_clock(timedelta(minutes=61))
    assert admin.get("/admin/activity").status_code == 302  # to the login page
    assert not _opens(admin)


def test_last_seen_is_written_at_most_once_a_minute(
    app: Flask, admin: FlaskClient, shift_clock: Callable[[timedelta], None]
) -> None:
    (row,) = _rows(app)
    for seconds in (1, 30, 59):
        shift_clock(timedelta(seconds=seconds))
        assert _opens(admin)
    assert _rows(app)[0].last_seen_at == row.last_seen_at
    shift_clock(timedelta(seconds=61))
    assert _opens(admin)
    (touched,) = _rows(app)
    assert touched.last_seen_at - row.last_seen_at >= timedelta(seconds=61)
    assert (touched.created_at, touched.expires_at) == (row.created_at, row.expires_at)


def test_a_login_rotates_the_session_id(app: Flask, admin: FlaskClient) -> None:
    before = _session_id(admin)
    copy = _copy(admin, app)
    assert log_in(admin).status_code == 302
    after = _session_id(admin)
    assert before and after and before != after
    assert len(after) >= 43  # secrets.token_urlsafe(32)
    assert [row.id for row in _rows(app)] == [_hash(after)]  # only the hash is stored
    assert _opens(admin)
    assert not _opens(copy)


def test_a_session_planted_before_the_login_is_not_kept(app: Flask, client: FlaskClient) -> None:
    """Session fixation: whatever the cookie held before the login, the login makes a new id."""
    planted = secrets.token_urlsafe(32)
    with client.session_transaction() as session:
        session["admin"] = planted
    assert log_in(client).status_code == 302
    assert _session_id(client) not in (None, planted)


def test_the_cookie_expires_when_the_session_would(
    app: Flask, client: FlaskClient, shift_clock: Callable[[timedelta], None]
) -> None:
    app.config.update(ADMIN_SESSION_LIFETIME=90 * 60, ADMIN_SESSION_IDLE_TIMEOUT=3600)
    assert log_in(client).status_code == 302
    (row,) = _rows(app)
    # Idle for an hour ends it first: the browser drops the cookie then.
    assert _cookie_expires(client) == _whole_seconds(row.last_seen_at + timedelta(hours=1))
    shift_clock(timedelta(minutes=50))
    assert _opens(client)
    # Seen again: the absolute end (90 min after the login) now comes before the idle one.
    assert _cookie_expires(client) == _whole_seconds(row.expires_at)


def test_flask_refuses_a_cookie_signed_longer_ago_than_the_lifetime(app: Flask) -> None:
    assert app.permanent_session_lifetime == timedelta(seconds=app.config["ADMIN_SESSION_LIFETIME"])
    assert app.permanent_session_lifetime == timedelta(hours=12)  # not Flask's 31 days


@pytest.mark.parametrize("kind", ["random", "stored hash", "not a string", "old marker"])
def test_a_forged_or_unknown_session_id_is_refused(
    app: Flask, admin: FlaskClient, kind: str
) -> None:
    """A random id; the hash from the table (a leaked copy of the database); a value of another
    type; the credential fingerprint, which is what the cookie held before this table existed."""
    (row,) = _rows(app)
    forged = {
        "random": secrets.token_urlsafe(32),
        "stored hash": row.id,
        "not a string": 12345,
        "old marker": row.fingerprint,
    }[kind]
    client = app.test_client()
    with client.session_transaction() as session:
        session["admin"] = forged
    assert not _opens(client)
    assert client.get("/metrics").status_code == 401
    assert _session_id(client) is None  # dropped from the cookie
    assert len(_rows(app)) == 1  # the real session is untouched
    assert _opens(admin)


def test_a_login_deletes_the_sessions_that_have_ended(app: Flask, admin: FlaskClient) -> None:
    (current,) = _rows(app)  # `admin`'s, opened with the credentials of now
    fingerprint = current.fingerprint
    now = utcnow()
    rows = {
        "expired": (
            now - timedelta(hours=13),
            now - timedelta(minutes=5),
            now - timedelta(hours=1),
        ),
        "idle": (now - timedelta(hours=3), now - timedelta(hours=2), now + timedelta(hours=9)),
        "live": (now - timedelta(hours=1), now - timedelta(minutes=1), now + timedelta(hours=11)),
        "other password": (now, now, now + timedelta(hours=12)),
    }
    with app.app_context():
        for name, (created_at, last_seen_at, expires_at) in rows.items():
            db.session.add(
                AdminSession(
                    id=_hash(name),
                    fingerprint="0" * 64 if name == "other password" else fingerprint,
                    created_at=created_at,
                    last_seen_at=last_seen_at,
                    expires_at=expires_at,
                )
            )
        db.session.commit()
    assert log_in(admin).status_code == 302  # a new login, in the same browser
    kept = {row.id for row in _rows(app)}
    assert kept == {_hash("live"), _hash(_session_id(admin))}


def test_with_the_database_down_nobody_is_logged_in(tmp_path: Path) -> None:
    """The lookup fails, and the request with it (a 500 in production); it is never taken for
    a live session, and no page is served."""
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://flasky@127.0.0.1:{port}/flasky",
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}},
        CELERY={"broker_url": "memory://"},
        RATELIMIT_STORAGE_URI="memory://",
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD_HASH=generate_password_hash(PASSWORD),
    )
    client = app.test_client()
    with client.session_transaction() as session:
        session["admin"] = secrets.token_urlsafe(32)
    for path in ("/admin/", "/metrics"):
        with pytest.raises(OperationalError):
            client.get(path)
    assert client.get("/admin/login").status_code == 200  # the form needs no database
    with pytest.raises(OperationalError):
        log_in(client)


def test_before_the_migration_the_admin_answers_503(tmp_path: Path) -> None:
    """New code on a database still at 0005 (no admin_sessions table): the schema check's 503,
    which says to run the migrations, not a 500."""
    url = f"sqlite:///{tmp_path / 'flasky.sqlite'}"
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=url,
        CELERY={"broker_url": "memory://"},
        RATELIMIT_STORAGE_URI="memory://",
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD_HASH=generate_password_hash(PASSWORD),
    )
    with app.app_context():
        upgrade(revision="0005")
    client = app.test_client()
    with client.session_transaction() as session:
        session["admin"] = secrets.token_urlsafe(32)
    response = client.get("/admin/")
    assert response.status_code == 503 and "not migrated" in response.text
    response = log_in(client)
    assert response.status_code == 503
    with app.app_context():
        db.engine.dispose()


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _cookie_expires(client: FlaskClient) -> datetime:
    expires = client.get_cookie("session").expires
    assert expires is not None
    return expires.astimezone(UTC).replace(tzinfo=None)


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
