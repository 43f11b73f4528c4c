"""A bulk backlog lives in the database: Redis holds what is in flight, not 100,000 emails.

Runs on PostgreSQL only (its own database): the backlog is about the broker, and 100,000 rows
twice would double the suite's longest test for nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from sqlalchemy import insert

from devtools.postgres import PostgresDatabase
from devtools.smtp_server import SMTPServer
from tests.integration.conftest import app_settings, migrate, worker_in_thread
from tests.integration.queued import queued_ids
from web import create_app
from web.extensions import db
from web.models import Email, utcnow
from worker.tasks import sweep_outbox

BACKLOG = 100_000
TARGET = 1_000  # FLASKY_SWEEP_QUEUE_TARGET, emails on the bulk queue at most


@pytest.fixture
def postgres_app(redis_url: str, smtp_server: SMTPServer) -> Iterator[Flask]:
    with PostgresDatabase() as database:
        migrate(database.url)
        settings = app_settings(database.url, redis_url, smtp_server.port)
        app = create_app("testing", **settings, FLASKY_SWEEP_QUEUE_TARGET=TARGET)
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _insert_backlog(app: Flask, count: int) -> None:
    """`count` bulk emails as send_bulk stores them (queued, due, never published)."""
    now = utcnow()
    with app.app_context():
        for start in range(0, count, 10_000):
            rows = [
                {
                    "recipients": [f"reader{n}@example.com"],
                    "sender": app.config["FLASKY_MAIL_SENDER"],
                    "subject": f"[Flasky] News {n}",
                    "text_body": "news",
                    "html_body": "<p>news</p>",
                    "message_id": f"<bulk-{n}@example.com>",
                    "priority": "bulk",
                    "status": "queued",
                    "attempts": 0,
                    "attachment_count": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(start, min(start + 10_000, count))
            ]
            db.session.execute(insert(Email), rows)
            db.session.commit()


class _MemorySampler:
    """Redis's used_memory, every 0.1 s, from a thread, until stopped."""

    def __init__(self, broker: redis.Redis) -> None:
        self.broker = broker
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(int(self.broker.info("memory")["used_memory"]))
            self._stop.wait(0.1)


def test_redis_holds_the_in_flight_window_of_a_100000_email_bulk_backlog(
    postgres_app: Flask, redis_url: str, smtp_server: SMTPServer
) -> None:
    broker = redis.Redis.from_url(redis_url)
    baseline = int(broker.info("memory")["used_memory"])
    _insert_backlog(postgres_app, BACKLOG)
    with _MemorySampler(broker) as sampler:
        with postgres_app.app_context():
            assert sweep_outbox() == TARGET  # the first window, not the backlog
        assert len(queued_ids(broker)) == TARGET
        with worker_in_thread(postgres_app, concurrency=2):
            # The workers take batches and top the queue up behind them as they go.
            smtp_server.wait_for_messages(2 * TARGET + TARGET // 2, timeout=120)
            waiting = len(queued_ids(broker))
        delivered = len(smtp_server.messages)
    assert delivered > 2 * TARGET  # more than the first window: the workers fed the queue
    assert waiting <= TARGET, f"{waiting} emails waited on the bulk queue"
    growth = max(sampler.samples) - baseline
    assert growth < 5 * 2**20, f"Redis grew by {growth} bytes under a {BACKLOG}-email backlog"
    counts = {m.message_id for m in smtp_server.messages}
    assert len(counts) == delivered, "an email arrived twice"
