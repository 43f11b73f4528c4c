"""The security probe's findings (issue 14, points 1, 3, 4, 5 and 8), replayed against the real
parts: gunicorn serving the production configuration, its own Redis killed, `flask` commands.

The rules behind them are tested one by one in tests/unit/test_hardening.py.
"""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf.csrf import URLSafeTimedSerializer
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from devtools.environment import flasky_env
from devtools.ports import free_port, port_answers
from devtools.processes import Process, running
from devtools.redis_server import RedisServer
from devtools.smtp_server import SMTPServer
from devtools.waiting import wait_until
from devtools.webclient import Client, csrf_token
from tests.forms import csrf_token as form_token
from tests.forms import post_name
from tests.integration.admin_login import PASSWORD, USERNAME
from tests.integration.conftest import app_settings, emails, migrate
from tests.integration.outbox_rows import add_emails
from web import CONFIG_ERROR_EXIT_STATUS, create_app
from web.extensions import db
from web.limiter import limiter
from web.models import User

ROOT = Path(__file__).resolve().parents[2]
KEY = "production-key-for-the-tests-0123456789"
MB = 1024 * 1024

StartWeb = Callable[..., int]


@pytest.fixture
def production_web(tmp_path: Path, redis_url: str, processes: list[Process]) -> StartWeb:
    """Start gunicorn on the production configuration (a migrated SQLite database, the test
    Redis) with extra `settings`; return its port."""

    def start(**settings: str) -> int:
        url = f"sqlite:///{tmp_path / 'flasky.sqlite'}"
        migrate(url)
        port = free_port()
        env = flasky_env(
            "production",
            tmp_path,
            redis_url=redis_url,
            mail_port=free_port(),
            database_url=url,
            settings={"SECRET_KEY": KEY, **settings},
        )
        args = ["gunicorn", "--bind", f"127.0.0.1:{port}", "--no-control-socket"]
        web = Process("web", [sys.executable, "-m", *args, "web:create_app()"], env, tmp_path)
        processes.append(web)
        wait_until(lambda: running(web) and port_answers(port), 30, "gunicorn to listen")
        Client(f"http://127.0.0.1:{port}").status("/")  # a first request: warm, as in use
        return port

    return start


# --- 1. the request body limit --------------------------------------------------------------


def _stream(port: int, head: str, chunks: Iterator[bytes]) -> tuple[int, str, int, float]:
    """Send `head`, then `chunks` one by one until the server answers (or hangs up): its
    status, its body, how many body bytes went out, and the seconds it all took."""
    start, sent = time.monotonic(), 0
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for chunk in chunks:
            if select.select([sock], [], [], 0.01)[0]:
                break  # the answer is there
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        reply = b""
        try:
            while data := sock.recv(65536):
                reply += data
        except ConnectionResetError:
            pass  # a server that closes with the body unread resets; the answer came first
    status_line, _, rest = reply.decode(errors="replace").partition("\r\n")
    return (
        int(status_line.split()[1]),
        rest.partition("\r\n\r\n")[2],
        sent,
        time.monotonic() - start,
    )


def _pieces(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def test_a_50_mb_form_post_is_refused_before_it_is_read(production_web: StartWeb) -> None:
    port = production_web()
    head = (
        f"POST / HTTP/1.1\nHost: 127.0.0.1:{port}\n"
        f"Content-Type: application/x-www-form-urlencoded\nContent-Length: {50 * MB}\n"
    )
    status, body, sent, seconds = _stream(port, head, _pieces(50 * MB))
    assert status == 413
    assert "That was too large" in body and "nothing was read or saved" in body
    # Answered on the headers: what went out meanwhile sat in the sockets' buffers.
    assert sent < 8 * MB and seconds < 3, (sent, seconds)


def test_a_30_mb_multipart_part_is_refused_while_it_streams(production_web: StartWeb) -> None:
    """Chunked, so no Content-Length announces the size: Werkzeug stops reading at the limit."""
    port = production_web()
    head = (
        f"POST / HTTP/1.1\nHost: 127.0.0.1:{port}\nTransfer-Encoding: chunked\n"
        "Content-Type: multipart/form-data; boundary=b0undary\n"
    )
    part = (
        b'--b0undary\r\nContent-Disposition: form-data; name="name"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )

    def chunked() -> Iterator[bytes]:
        for piece in (part, *_pieces(30 * MB)):
            yield b"%x\r\n%s\r\n" % (len(piece), piece)

    status, body, sent, seconds = _stream(port, head, chunked())
    assert status == 413 and "That was too large" in body
    assert sent < 8 * MB and seconds < 3, (sent, seconds)


def test_a_normal_form_still_works_under_the_limit(production_web: StartWeb) -> None:
    port = production_web()
    site = Client(f"http://127.0.0.1:{port}")
    page = site.get("/")
    reply = site.post_form("/", {"name": "Ada " + "é" * 59, "csrf_token": csrf_token(page.body)})
    assert reply.status == 200 and "Hello, Ada" in reply.body


# --- 5. trusted hosts and proxy headers -----------------------------------------------------


def _get(port: int, path: str, **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_a_foreign_host_gets_400_and_never_a_redirect_to_it(production_web: StartWeb) -> None:
    port = production_web()  # FLASKY_TRUSTED_HOSTS unset: production answers to localhost only
    for path in ("/admin", "/admin/", "/"):
        refused = _get(port, path, Host="evil.example")
        assert refused.status == 400 and refused.getheader("Location") is None
    ours = _get(port, "/admin", Host=f"127.0.0.1:{port}")
    assert ours.status == 308 and ours.getheader("Location") == f"http://127.0.0.1:{port}/admin/"
    forged = _get(port, "/admin", Host=f"localhost:{port}", **{"X-Forwarded-Host": "evil.example"})
    assert forged.getheader("Location") == f"http://localhost:{port}/admin/"  # no proxy: ignored


def test_behind_a_proxy_the_forwarded_host_and_scheme_are_used_and_checked(
    production_web: StartWeb,
) -> None:
    port = production_web(FLASKY_TRUSTED_HOSTS="flasky.example.com", FLASKY_PROXY_HOPS="1")
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    ours = _get(
        port, "/admin", Host="127.0.0.1", **proxied, **{"X-Forwarded-Host": "flasky.example.com"}
    )
    assert ours.status == 308
    assert ours.getheader("Location") == "https://flasky.example.com/admin/"
    evil = _get(port, "/admin", Host="127.0.0.1", **proxied, **{"X-Forwarded-Host": "evil.example"})
    assert evil.status == 400 and evil.getheader("Location") is None
    assert _get(port, "/", Host="evil.example").status == 400


# --- 3, 4, 8d. start-up refusals, one line each -----------------------------------------------


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This process's environment without flasky's, Flask's or the mail settings, then ours."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASKY_", "FLASK_", "MAIL_", "ADMIN_"))
        and key not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")
    }
    return {**clean, "FLASK_SKIP_DOTENV": "1", "FLASKY_INSTANCE_PATH": str(tmp_path), **settings}


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == CONFIG_ERROR_EXIT_STATUS, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


CREDENTIALS = {"MAIL_USERNAME": "flasky", "MAIL_PASSWORD": "relay-password-0123"}


@pytest.mark.parametrize(
    ("settings", "start"),
    [
        ({"SECRET_KEY": "change-me"}, "SECRET_KEY is a placeholder"),
        ({"SECRET_KEY": "x"}, "SECRET_KEY is too short: production needs at least 32 characters"),
        (
            {"SECRET_KEY": KEY, "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD": "admin"},
            "ADMIN_PASSWORD is shorter than 12 characters",
        ),
        (
            {"SECRET_KEY": KEY, "MAIL_SERVER": "smtp.example.com", **CREDENTIALS},
            "MAIL_USERNAME and MAIL_PASSWORD are set without MAIL_USE_TLS or MAIL_USE_SSL",
        ),
    ],
)
def test_production_refuses_weak_secrets_and_clear_text_mail_passwords(
    tmp_path: Path, settings: dict[str, str], start: str
) -> None:
    command = [sys.executable, "-m", "flask", "--app", "web", "routes"]
    result = subprocess.run(
        command, cwd=ROOT, env=_env(tmp_path, FLASKY_CONFIG="production", **settings),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert _one_line(result).startswith(f"flasky: configuration error: {start}")
    assert settings.get("MAIL_PASSWORD", "change-me") not in result.stderr


@pytest.mark.parametrize("debug", [["--debug"], []], ids=["--debug", "FLASK_DEBUG=1"])
def test_flask_run_refuses_the_debugger_in_production(tmp_path: Path, debug: list[str]) -> None:
    command = [sys.executable, "-m", "flask", "--app", "web", *debug, "run"]
    command += ["--port", str(free_port())]
    env = _env(tmp_path, FLASKY_CONFIG="production", SECRET_KEY=KEY, FLASK_DEBUG="1")
    # Its own process group: a `flask run` that does serve starts a reloader child, which the
    # timeout must stop too.
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as server:  # fmt: skip
        try:
            stdout, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate()
            pytest.fail("flask run served the debugger in the production configuration")
    result = subprocess.CompletedProcess(command, server.returncode, stdout, stderr)
    assert _one_line(result).startswith(
        "flasky: configuration error: FLASK_DEBUG is on in the production configuration"
    )


# --- 8a. the login limit fails closed without Redis -------------------------------------------


def test_without_redis_no_login_attempt_is_checked_but_the_form_works(
    database_url: str, smtp_server: SMTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process-wide limiter remembers that its storage died: put that back afterwards.
    monkeypatch.setattr(limiter, "_storage_dead", limiter._storage_dead)
    redis = RedisServer(tmp_path)
    redis.start()
    app = create_app(
        "testing",
        **app_settings(database_url, redis.url, smtp_server.port),
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD_HASH=generate_password_hash(PASSWORD),
        RATELIMIT_STORAGE_URI=redis.url,
        FLASKY_FORM_RATE_LIMIT="10 per minute",
    )
    client = app.test_client()

    def log_in(password: str = PASSWORD) -> TestResponse:
        token = form_token(client, "/admin/login")
        data = {"username": USERNAME, "password": password, "csrf_token": token}
        return client.post("/admin/login", data=data)

    try:
        assert log_in("wrong-password").status_code == 200  # counted in Redis: checked
        redis.stop()
        refused = log_in()
        page = refused.get_data(as_text=True)
        assert refused.status_code == 503  # even the right password: nothing is checked
        assert "Try again shortly" in page and PASSWORD not in page
        assert int(refused.headers["Retry-After"]) > 0
        # No attempt ever is; after the limit's 5, the memory fallback's count says 429.
        statuses = [log_in().status_code for _ in range(6)]
        assert set(statuses) <= {503, 429}, statuses
        assert post_name(client, "Grace").status_code == 302  # the name form keeps working
        with app.app_context():
            assert "Grace" in db.session.scalars(db.select(User.username)).all()
        redis.start()  # the same port: Flask-Limiter finds it again within seconds
        wait_until(lambda: log_in().status_code == 302, 40, "the login to count in Redis again")
    finally:
        redis.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- 8b. an expired form ----------------------------------------------------------------------


@pytest.fixture
def stale_tokens(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make the CSRF tokens issued until the returned function is called two hours old: the
    page was left open past WTF_CSRF_TIME_LIMIT (an hour)."""
    signer = URLSafeTimedSerializer.default_signer  # itsdangerous's, which Flask-WTF signs with
    real = signer.get_timestamp
    monkeypatch.setattr(signer, "get_timestamp", lambda self: real(self) - 7200)
    return lambda: monkeypatch.setattr(signer, "get_timestamp", real)


@pytest.fixture
def admin_app(app: Flask, database_url: str, redis_url: str, smtp_server: SMTPServer) -> Flask:
    """conftest's `app` with an admin account, the login limit counted in the test Redis."""
    return create_app(
        "testing",
        **app_settings(database_url, redis_url, smtp_server.port),
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD_HASH=generate_password_hash(PASSWORD),
        RATELIMIT_STORAGE_URI=redis_url,
    )


def test_an_expired_name_form_comes_back_filled_in(
    app: Flask, client: FlaskClient, stale_tokens: Callable[[], None]
) -> None:
    token = form_token(client)
    stale_tokens()
    expired = client.post("/", data={"name": "Ada Lovelace", "csrf_token": token})
    page = expired.get_data(as_text=True)
    assert expired.status_code == 400
    assert "The form had expired, so nothing was saved: send it again." in page
    assert 'value="Ada Lovelace"' in page
    fresh = csrf_token(page)
    assert fresh != token
    assert client.post("/", data={"name": "Ada Lovelace", "csrf_token": fresh}).status_code == 302
    with app.app_context():
        assert list(db.session.scalars(db.select(User.username))) == ["Ada Lovelace"]


def test_an_expired_login_keeps_the_username_and_never_the_password(
    admin_app: Flask, stale_tokens: Callable[[], None]
) -> None:
    client = admin_app.test_client()
    token = form_token(client, "/admin/login")
    stale_tokens()
    data = {"username": USERNAME, "password": PASSWORD, "csrf_token": token}
    expired = client.post("/admin/login", data=data)
    page = expired.get_data(as_text=True)
    assert expired.status_code == 400
    assert "The form had expired, so nothing was done: send it again." in page
    assert f'value="{USERNAME}"' in page and PASSWORD not in page
    assert client.get("/admin/").status_code == 302  # not logged in
    data["csrf_token"] = csrf_token(page)
    assert client.post("/admin/login", data=data).status_code == 302


def test_an_expired_admin_action_does_nothing_and_says_so(
    admin_app: Flask, stale_tokens: Callable[[], None]
) -> None:
    client = admin_app.test_client()
    (email_id,) = add_emails(admin_app, status="failed")
    data = {
        "username": USERNAME,
        "password": PASSWORD,
        "csrf_token": form_token(client, "/admin/login"),
    }
    assert client.post("/admin/login", data=data).status_code == 302
    token = form_token(client, f"/admin/emails/{email_id}")
    stale_tokens()
    data = {"csrf_token": token, "next": "/admin/?status=failed"}
    expired = client.post(f"/admin/emails/{email_id}/retry", data=data)
    page = expired.get_data(as_text=True)
    assert expired.status_code == 400
    assert "The form had expired, so nothing was done: send it again." in page
    assert 'href="/admin/?status=failed"' in page
    assert [email.status for email in emails(admin_app)] == ["failed"]


# --- 8c. no copies of the admin's pages ----------------------------------------------------------


def test_admin_pages_are_never_stored(admin_app: Flask) -> None:
    client = admin_app.test_client()
    (email_id,) = add_emails(admin_app, status="sent")
    assert client.get("/admin/login").headers["Cache-Control"] == "no-store"
    data = {
        "username": USERNAME,
        "password": PASSWORD,
        "csrf_token": form_token(client, "/admin/login"),
    }
    assert client.post("/admin/login", data=data).headers["Cache-Control"] == "no-store"
    for path in ("/admin/", f"/admin/emails/{email_id}", "/admin/activity"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
