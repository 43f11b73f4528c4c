"""Fixtures that start real services: Redis, PostgreSQL databases, an SMTP server, a worker.

Every test that uses `app` runs twice, on SQLite and on PostgreSQL (`database_url`). Every test
here is marked `integration` (`pytest -m integration` runs this layer alone).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import delete

# Loaded before any test app exists. Loading it builds the worker's own app (worker/__init__.py);
# when that happened inside a test, as an in-thread worker started and loaded its `imports`, the
# worker ran its tasks in that app (and its empty instance database), not in the test's.
import worker.tasks  # noqa: F401
from devtools.environment import ADMIN, flasky_env
from devtools.postgres import PostgresDatabase
from devtools.processes import Process
from devtools.redis_server import RedisServer
from devtools.smtp_server import SMTPServer
from devtools.waiting import wait_until
from web import clock, create_app
from web.extensions import db
from web.models import AdminAction, Email, PurgedAttempts, User

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; each test gets it flushed (see `redis_url`)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database (the committed Alembic migrations, as in production)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'flasky.sqlite'}"
        migrate(url)
        yield url
        return
    with PostgresDatabase() as database:
        migrate(database.url)
        yield database.url


def migrate(url: str) -> None:
    """Apply the committed Alembic migrations, as production does."""
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Processes a test starts (append them): all stopped at the end, even on failure."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.fixture
def shift_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """Move flasky's clock (web.clock.now) ahead of the real one, for this test only."""
    real_now = clock.now

    def shift(ahead: timedelta) -> None:
        monkeypatch.setattr(clock, "now", lambda: real_now() + ahead)

    return shift


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def app_settings(database_url: str, redis_url: str, smtp_port: int) -> dict[str, object]:
    """Settings for an app under test: its own database, Redis and SMTP server; fast retries."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "CELERY": {"broker_url": redis_url},
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_port,
        "MAIL_TIMEOUT": 2.0,
        "MAIL_DATA_TIMEOUT": 3.0,
        "FLASKY_ADMIN": ADMIN,
        "FLASKY_RETRY_BACKOFF_BASE": 0.1,
        "FLASKY_RETRY_BACKOFF_CAP": 0.5,
        "FLASKY_GREYLIST_DELAY": 0.2,
        "FLASKY_SWEEP_GRACE": 0.0,
    }


def subprocess_env(
    database_url: str, redis_url: str, smtp_port: int, instance_path: Path
) -> dict[str, str]:
    """The environment of a `celery -A worker ...` or `flask --app web ...` subprocess: the
    test's database, Redis and SMTP server, fast retries, a sweep every half second."""
    settings = {
        "FLASKY_RETRY_BACKOFF_BASE": "0.1",
        "FLASKY_RETRY_BACKOFF_CAP": "0.5",
        "FLASKY_GREYLIST_DELAY": "0.2",
        "FLASKY_SWEEP_INTERVAL": "0.5",
        "FLASKY_SWEEP_GRACE": "1",
    }
    return flasky_env(
        "testing",
        instance_path,
        redis_url=redis_url,
        mail_port=smtp_port,
        database_url=database_url,
        settings=settings,
    )


@pytest.fixture
def app(database_url: str, redis_url: str, smtp_server: SMTPServer) -> Iterator[Flask]:
    app = create_app("testing", **app_settings(database_url, redis_url, smtp_server.port))
    with app.app_context():
        for model in (Email, User, AdminAction, PurgedAttempts):  # attempts go with their emails
            db.session.execute(delete(model))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@contextmanager
def worker_in_thread(app: Flask, concurrency: int = 2) -> Iterator[object]:
    """A real Celery worker consuming from Redis, in a thread of the test process
    (celery.contrib.testing). When it stops, the tasks it was running have finished too:
    start_worker stops consuming at once but leaves its pool's tasks running, and a batch left
    running would go on sending, retrying and publishing into the next test."""
    with start_worker(
        app.extensions["celery"],
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        shutdown_timeout=20,
    ) as worker:
        yield worker
    wait_until(lambda: not worker_state.active_requests, 60, "the worker's tasks to finish")


@pytest.fixture
def celery_worker(app: Flask) -> Iterator[object]:
    with worker_in_thread(app) as worker:
        yield worker


def emails(app: Flask) -> list[Email]:
    with app.app_context():
        rows = db.session.scalars(db.select(Email).order_by(Email.id)).all()
        db.session.expunge_all()
        return list(rows)


def wait_for_status(app: Flask, status: str, count: int = 1, timeout: float = 15.0) -> list[Email]:
    """Wait until at least `count` emails have `status`; return those emails."""
    deadline = time.monotonic() + timeout
    while True:
        rows = emails(app)
        matching = [e for e in rows if e.status == status]
        if len(matching) >= count:
            return matching
        if time.monotonic() > deadline:
            seen = [(e.id, e.status, e.attempts, e.last_error) for e in rows]
            raise AssertionError(
                f"waited {timeout}s for {count} {status!r} email(s); outbox: {seen}"
            )
        time.sleep(0.05)


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    path = Path(request.config.rootpath) / "test-output" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path
