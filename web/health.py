"""Probes for orchestrators: `/healthz` (the process answers) and `/readyz` (it can serve).

`/readyz` checks what a request needs, the database and Redis, each with a short bound, so that
a hung dependency fails the probe instead of hanging it. A failure is named by its exception
class only: the reply never carries a URL, a host name or a password.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from flask import Blueprint, Flask, current_app
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from web.extensions import db

log = logging.getLogger(__name__)

health = Blueprint("health", __name__)

TIMEOUT_SECONDS = 1.0
# libpq (and psycopg, which follows it) never waits less than 2 s for a connection.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 2
_ENGINE_KEY = "flasky_health_engine"
_NO_STORE = {"Cache-Control": "no-store"}


@health.get("/healthz")
def healthz() -> tuple[dict[str, str], int, dict[str, str]]:
    return {"status": "ok"}, 200, _NO_STORE


@health.get("/readyz")
def readyz() -> tuple[dict[str, str], int, dict[str, str]]:
    results = {
        "database": _check("database", _ping_database),
        "redis": _check("redis", _ping_redis),
    }
    ready = all(result == "ok" for result in results.values())
    return results, 200 if ready else 503, _NO_STORE


def _check(name: str, ping: Callable[[], None]) -> str:
    try:
        ping()
    except Exception as exc:  # any failure means "not ready"; the log has the details
        log.warning("readiness check of %s failed: %s: %s", name, type(exc).__name__, exc)
        return f"error: {type(exc).__name__}"
    return "ok"


def _ping_database() -> None:
    with _probe_engine(current_app._get_current_object()).connect() as connection:
        connection.execute(text("SELECT 1"))


def _probe_engine(app: Flask) -> Engine:
    """An engine on the app's database URL whose connections give up quickly.

    The app's own engine waits for a connection as long as the driver does (minutes for a host
    that drops packets), and its options are not ours to change. This one opens a connection
    per probe (NullPool): the probe then also proves that new connections can be made.
    """
    engine: Engine | None = app.extensions.get(_ENGINE_KEY)
    if engine is None:
        url = db.engine.url
        connect_args: dict[str, object] = {}
        if url.get_backend_name() == "postgresql":
            statement_timeout_ms = int(TIMEOUT_SECONDS * 1000)
            connect_args = {
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS,
                "options": f"-c statement_timeout={statement_timeout_ms}",
            }
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        app.extensions[_ENGINE_KEY] = engine
    return engine


def _ping_redis() -> None:
    # The Celery app's broker URL, not REDIS_URL: an app may be pointed elsewhere (tests are).
    url = current_app.config["CELERY"]["broker_url"]
    client = redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()
