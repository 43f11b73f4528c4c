"""The book's Gmail settings (STARTTLS on a submission port, AUTH) and implicit TLS, for real.

The test makes its own certificate authority (trustme); the worker verifies the server's
certificate, and trusts the test CA only because MAIL_CA_FILE names it.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme
from flask import Flask
from flask.testing import FlaskClient

from devtools.smtp_server import SMTPServer
from tests.forms import post_name
from tests.integration.conftest import (
    ADMIN,
    app_settings,
    emails,
    wait_for_status,
    worker_in_thread,
)
from web import create_app

USERNAME = "flasky@example.com"
PASSWORD = "s3cret-Pa55word-never-logged"


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log line of the process at DEBUG level, formatted with its arguments."""
    lines: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls_context(certificate_authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(certificate_authority: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return str(path)


@contextmanager
def _tls_app(
    database_url: str, redis_url: str, server: SMTPServer, **mail: object
) -> Iterator[Flask]:
    """The app with these mail settings, and a worker delivering its emails meanwhile."""
    app = create_app("testing", **{**app_settings(database_url, redis_url, server.port), **mail})
    with worker_in_thread(app):
        yield app


@pytest.fixture
def starttls_server(server_tls_context: ssl.SSLContext) -> Iterator[SMTPServer]:
    with SMTPServer(
        starttls_context=server_tls_context,
        require_starttls=True,
        auth=(USERNAME, PASSWORD),
    ) as server:
        yield server


def test_starttls_with_auth_delivers(
    app: Flask,  # cleans the database
    database_url: str,
    redis_url: str,
    starttls_server: SMTPServer,
    ca_file: str,
) -> None:
    with _tls_app(
        database_url,
        redis_url,
        starttls_server,
        MAIL_USE_TLS=True,
        MAIL_USERNAME=USERNAME,
        MAIL_PASSWORD=PASSWORD,
        MAIL_CA_FILE=ca_file,
    ) as tls_app:
        assert post_name(tls_app.test_client(), "Alice").status_code == 302
        (row,) = wait_for_status(tls_app, "sent")
        assert row.attempts == 1
    (message,) = starttls_server.wait_for_messages(1)
    assert message.rcpt_tos == [ADMIN]


def test_implicit_tls_delivers(
    app: Flask,
    database_url: str,
    redis_url: str,
    server_tls_context: ssl.SSLContext,
    ca_file: str,
) -> None:
    with SMTPServer(implicit_tls_context=server_tls_context, auth=(USERNAME, PASSWORD)) as server:
        with _tls_app(
            database_url,
            redis_url,
            server,
            MAIL_USE_SSL=True,
            MAIL_USERNAME=USERNAME,
            MAIL_PASSWORD=PASSWORD,
            MAIL_CA_FILE=ca_file,
        ) as tls_app:
            post_name(tls_app.test_client(), "Bob")
            wait_for_status(tls_app, "sent")
        assert len(server.wait_for_messages(1)) == 1


def test_untrusted_certificate_fails_with_a_clear_reason(
    app: Flask, database_url: str, redis_url: str, starttls_server: SMTPServer
) -> None:
    """Certificate verification is on by default: a private CA must be named in MAIL_CA_FILE."""
    with _tls_app(
        database_url,
        redis_url,
        starttls_server,
        MAIL_USE_TLS=True,
        MAIL_USERNAME=USERNAME,
        MAIL_PASSWORD=PASSWORD,
    ) as tls_app:
        post_name(tls_app.test_client(), "Carol")
        (row,) = wait_for_status(tls_app, "failed")
    assert row.attempts == 1
    assert "certificate" in row.last_error and "MAIL_CA_FILE" in row.last_error
    assert starttls_server.messages == []


def test_wrong_password_fails_at_once_and_the_password_is_nowhere(
    app: Flask,
    database_url: str,
    redis_url: str,
    starttls_server: SMTPServer,
    ca_file: str,
) -> None:
    wrong_password = "wrong-Pa55word-must-not-leak"
    wrong_app = _tls_app(
        database_url,
        redis_url,
        starttls_server,
        MAIL_USE_TLS=True,
        MAIL_USERNAME=USERNAME,
        MAIL_PASSWORD=wrong_password,
        MAIL_CA_FILE=ca_file,
    )
    # The logs are captured once the worker runs: it replaces the root logger's handlers.
    with wrong_app as tls_app, captured_logs() as log_lines:
        client: FlaskClient = tls_app.test_client()
        post_name(client, "Dave")
        (row,) = wait_for_status(tls_app, "failed")
        page = client.get("/").get_data(as_text=True)
    assert row.attempts == 1
    assert "535" in row.last_error and "authentication failed" in row.last_error
    assert starttls_server.messages == []
    # One AUTH per attempt: smtplib's login() would try LOGIN after PLAIN's 535, and each
    # failed login counts toward the server's lockout.
    assert starttls_server.auth_attempts == 1
    for value in vars(emails(tls_app)[0]).values():
        assert wrong_password not in str(value)
    logged = "\n".join(log_lines)
    assert wrong_password not in logged
    assert "535" in logged  # the failure itself is logged
    assert wrong_password not in page


def test_a_certificate_for_another_name_names_both(
    app: Flask, database_url: str, redis_url: str, certificate_authority: trustme.CA, ca_file: str
) -> None:
    """The CA is trusted (MAIL_CA_FILE), but the certificate is for localhost only: the
    reason says which names it holds, which one was asked, and not to set MAIL_CA_FILE."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("localhost", "mail.example.com").configure_cert(context)
    with (
        SMTPServer(starttls_context=context, require_starttls=True) as server,
        _tls_app(
            database_url, redis_url, server, MAIL_USE_TLS=True, MAIL_CA_FILE=ca_file
        ) as tls_app,
    ):
        post_name(tls_app.test_client(), "Erin")
        (row,) = wait_for_status(tls_app, "failed")
    assert row.attempts == 1
    assert "name mismatch" in row.last_error
    assert "is for localhost, mail.example.com" in row.last_error
    assert "'127.0.0.1'" in row.last_error
    assert "set MAIL_SERVER to a name the certificate holds" in row.last_error
    assert "MAIL_CA_FILE" not in row.last_error


def test_credentials_without_starttls_say_that_starttls_is_offered(
    app: Flask, database_url: str, redis_url: str, server_tls_context: ssl.SSLContext
) -> None:
    """The server offers AUTH only after STARTTLS (as Postfix with smtpd_tls_auth_only)."""
    with SMTPServer(starttls_context=server_tls_context, auth=(USERNAME, PASSWORD)) as server:
        with _tls_app(
            database_url, redis_url, server, MAIL_USERNAME=USERNAME, MAIL_PASSWORD=PASSWORD
        ) as tls_app:
            post_name(tls_app.test_client(), "Frank")
            (row,) = wait_for_status(tls_app, "failed")
        assert server.auth_attempts == 0 and server.messages == []
    assert row.attempts == 1
    assert row.last_error == (
        "the server offers AUTH only after STARTTLS, and MAIL_USE_TLS is off: set MAIL_USE_TLS=true"
    )
