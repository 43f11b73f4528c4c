"""The services a benchmark run owns: a redis-server on a free port and a PostgreSQL database.

Both are the test suite's own (tests/services.py), created for the run and removed at its end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
import redis

from tests import services
from tests.services import free_port, port_answers

__all__ = ["PostgresDatabase", "RedisServer", "free_port", "port_answers", "wait_until"]

POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.01) -> T:
    """Poll `condition` until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class RedisServer(services.RedisServer):
    """The test suite's throw-away redis-server, with what the benchmark reads of it."""

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def version(self) -> str:
        return str(self.client().info("server")["redis_version"])


class PostgresDatabase(services.PostgresDatabase):
    """The test suite's throw-away database, named for the run, with the benchmark's extras."""

    def __init__(self) -> None:
        super().__init__(prefix="flasky_bench", admin_url=POSTGRES_ADMIN_URL)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def version(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def truncate(self) -> None:
        """Empty the outbox and the users (between repeats)."""
        with self.connect() as conn:
            conn.execute("TRUNCATE email_attachments, emails, users RESTART IDENTITY")
