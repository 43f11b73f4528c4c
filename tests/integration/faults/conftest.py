"""Fixtures of the fault suite: one migrated PostgreSQL database, and a fresh stack per scenario."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from devtools.postgres import PostgresDatabase
from devtools.redis_server import RedisServer
from devtools.smtp_server import SMTPServer
from tests.integration.conftest import migrate
from tests.integration.faults.figures import OUTPUT_DIR
from tests.integration.faults.stack import Stack

LOG_ROOT = OUTPUT_DIR / "logs"


@pytest.fixture(scope="session")
def fault_database() -> Iterator[PostgresDatabase]:
    """A database of the suite's own, migrated as production is (Alembic), dropped at the end."""
    with PostgresDatabase() as database:
        migrate(database.url)
        yield database


@pytest.fixture
def stack(fault_database: PostgresDatabase, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Empty tables, a Redis and an SMTP server of this scenario's own; processes on demand.

    Every process the scenario starts is stopped at the end, whatever happened. The processes'
    logs stay in test-output/faults/logs/<test>/ for a post-mortem (not in tmp_path: pytest
    runs of other people on this machine prune /tmp/pytest-of-<user> while we run).
    """
    fault_database.empty()
    log_dir = LOG_ROOT / request.node.name
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    redis = RedisServer(log_dir)
    redis.start()
    smtp = SMTPServer()
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
