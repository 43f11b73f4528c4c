"""`/healthz` (the process answers) and `/readyz` (the database and Redis answer, quickly)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.ports import free_port
from devtools.redis_server import RedisServer
from tests.integration.conftest import app_settings
from web import create_app

UNUSED_SMTP_PORT = 25
PASSWORD = "not-a-real-password"


def _app(database_url: str, redis_url: str) -> Flask:
    return create_app("testing", **app_settings(database_url, redis_url, UNUSED_SMTP_PORT))


def _closed_postgres_url() -> str:
    return f"postgresql+psycopg://flasky:{PASSWORD}@127.0.0.1:{free_port()}/flasky"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_healthz_is_ok_and_sets_nothing(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ok_when_the_database_and_redis_answer(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "redis": "ok"}


def test_readyz_names_redis_when_it_is_down(database_url: str, tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    redis_server.stop()
    response = _app(database_url, redis_server.url).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"database": "ok", "redis": "error: ConnectionError"}
    assert str(redis_server.port) not in response.get_data(as_text=True)


def test_readyz_names_the_database_when_it_is_down(redis_url: str) -> None:
    client = _app(_closed_postgres_url(), redis_url).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"database": "error: OperationalError", "redis": "ok"}
    body = response.get_data(as_text=True)
    for private in (PASSWORD, "127.0.0.1", "postgresql"):
        assert private not in body
    # Liveness does not depend on anything.
    assert client.get("/healthz").status_code == 200


def test_readyz_gives_up_on_hung_servers_quickly(silent_port: int) -> None:
    database_url = f"postgresql+psycopg://flasky:{PASSWORD}@127.0.0.1:{silent_port}/flasky"
    app = _app(database_url, f"redis://127.0.0.1:{silent_port}/0")
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.get_json() == {
        "database": "error: OperationalError",
        "redis": "error: TimeoutError",
    }
    # libpq's shortest connect timeout (2 s) plus Redis's 1 s, with some slack.
    assert elapsed < 5, elapsed
