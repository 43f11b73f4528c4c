"""Fixtures of the fault suite: one migrated PostgreSQL database, and a fresh stack per scenario."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import psycopg
import pytest
from flask_migrate import upgrade

from tests.faults.figures import OUTPUT_DIR
from tests.faults.smtp import LossyReplyServer
from tests.faults.stack import Stack
from tests.services import PostgresDatabase, RedisServer
from web import create_app
from web.extensions import db

LOG_ROOT = OUTPUT_DIR / "logs"


@pytest.fixture(scope="session")
def fault_database() -> Iterator[PostgresDatabase]:
    """A database of the suite's own, migrated as production is (Alembic), dropped at the end."""
    database = PostgresDatabase()
    database.create()
    try:
        app = create_app("testing", SQLALCHEMY_DATABASE_URI=database.url)
        with app.app_context():
            upgrade()
            db.engine.dispose()
        yield database
    finally:
        database.drop()


def _empty(database: PostgresDatabase) -> None:
    url = database.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE email_attachments, emails, users RESTART IDENTITY")


@pytest.fixture
def stack(fault_database: PostgresDatabase, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Empty tables, a Redis and an SMTP server of this scenario's own; processes on demand.

    Every process the scenario starts is stopped at the end, whatever happened. The processes'
    logs stay in test-output/faults/logs/<test>/ for a post-mortem (not in tmp_path: pytest
    runs of other people on this machine prune /tmp/pytest-of-<user> while we run).
    """
    _empty(fault_database)
    log_dir = LOG_ROOT / request.node.name
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    redis = RedisServer(log_dir)
    redis.start()
    smtp = LossyReplyServer()
    smtp.start()
    stack = Stack(fault_database, redis, smtp, log_dir)
    try:
        yield stack
    finally:
        try:
            stack.close()
        finally:
            smtp.stop()
            redis.stop()
