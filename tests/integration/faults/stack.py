"""The system under test as production runs it: gunicorn, a Celery worker and beat, as processes.

`Stack` owns the processes a scenario starts (and stops all of them in `close()`, whatever the
test did), knows the environment they share, and reads the two sides of the count: what the
outbox committed and what the SMTP server received.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from devtools.environment import ADMIN, flasky_env
from devtools.ports import free_port, port_answers
from devtools.postgres import PostgresDatabase
from devtools.proc import children_of
from devtools.processes import Process, running, stop_all
from devtools.redis_server import RedisServer
from devtools.smtp_server import SMTPServer, message_id_of
from devtools.waiting import wait_until
from web import create_app
from web.extensions import db
from web.models import Email, EmailStatus, utcnow

# Every bound of celeryconfig.py's chain, scaled down together so that faults play out in
# seconds: MAIL_TIMEOUT < soft limit < hard limit < lease < visibility timeout, and
# FLASKY_MAX_COUNTDOWN < visibility timeout. Enough attempts that a 30 s SMTP outage cannot
# use them up: the shortest possible sum of 24 backoffs (half of 0.5, 1, 2, then 4 s each) is
# over 40 s.
FAST_SETTINGS: dict[str, str] = {
    "MAIL_TIMEOUT": "1",
    "MAIL_DATA_TIMEOUT": "1.5",  # 80% of the soft limit plus this stays inside the hard limit
    "CELERY_TASK_SOFT_TIME_LIMIT": "3",
    "CELERY_TASK_TIME_LIMIT": "4",
    "FLASKY_LEASE_SECONDS": "5",
    "CELERY_VISIBILITY_TIMEOUT": "30",
    "FLASKY_MAX_COUNTDOWN": "10",
    "FLASKY_SWEEP_INTERVAL": "1",
    "FLASKY_SWEEP_GRACE": "2",
    "FLASKY_RETRY_BACKOFF_BASE": "0.5",
    "FLASKY_RETRY_BACKOFF_CAP": "4",
    "FLASKY_GREYLIST_DELAY": "1",
    "FLASKY_MAX_ATTEMPTS": "25",
    "CELERY_SOFT_SHUTDOWN_TIMEOUT": "5",
}


@dataclass(frozen=True)
class OutboxRow:
    message_id: str
    status: str
    attempts: int
    last_error: str | None


class Stack:
    """One scenario's processes and services: web, worker(s), beat, Redis, SMTP, PostgreSQL."""

    def __init__(
        self,
        database: PostgresDatabase,
        redis: RedisServer,
        smtp: SMTPServer,
        log_dir: Path,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.database = database
        self.redis = redis
        self.smtp = smtp
        self.log_dir = log_dir
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.web_port = free_port()
        self.processes: list[Process] = []
        self.started = time.monotonic()

    # ------------------------------------------------------------------ processes

    @property
    def env(self) -> dict[str, str]:
        return flasky_env(
            "testing",
            self.log_dir,
            redis_url=self.redis.url,
            mail_port=self.smtp.port,
            database_url=self.database.url,
            settings=self.settings,
        )

    def _start(self, name: str, args: list[str]) -> Process:
        process = Process(f"{name}-{len(self.processes)}", args, self.env, self.log_dir)
        self.processes.append(process)
        return process

    def start_web(self) -> Process:
        """gunicorn with 2 gthread workers of 10 threads: 20 requests can be in flight at once."""
        web = self._start(
            "web",
            [
                sys.executable, "-m", "gunicorn",
                "--bind", f"127.0.0.1:{self.web_port}",
                "--workers", "2", "--worker-class", "gthread", "--threads", "10",
                "--graceful-timeout", "2",
                "web:create_app()",
            ],
        )  # fmt: skip
        wait_until(lambda: running(web) and port_answers(self.web_port), 30, "gunicorn to listen")
        return web

    def start_worker(self, concurrency: int = 2) -> Process:
        celery = [sys.executable, "-m", "celery", "-A", "worker"]
        worker = self._start(
            "worker",
            [*celery, "worker", "--pool", "prefork", "--concurrency", str(concurrency),
             "--loglevel", "INFO"],
        )  # fmt: skip
        wait_until(
            lambda: (
                running(worker)
                and " ready." in worker.output()
                and len(children_of(worker.pid)) >= concurrency
            ),
            30,
            "the worker to be ready",
        )
        return worker

    def start_beat(self) -> Process:
        return self._start(
            "beat", [sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel", "INFO"]
        )

    def start_all(self) -> tuple[Process, Process, Process]:
        """Web, worker and beat; the worker last, as the slowest to get ready."""
        beat = self.start_beat()
        web = self.start_web()
        return web, self.start_worker(), beat

    def close(self) -> None:
        """Stop every process this stack started (process groups: children included)."""
        stop_all(self.processes, timeout=5)
        if "app" in self.__dict__:
            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()

    # ---------------------------------------------------------------- in-process app

    @cached_property
    def app(self) -> Flask:
        """An app of the test process on the same database and Redis (to send and to count).

        It pings pooled connections before use, so that counting survives the scenario that
        terminates every database connection.
        """
        return create_app(
            "testing",
            SQLALCHEMY_DATABASE_URI=self.database.url,
            SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
            CELERY={"broker_url": self.redis.url},
            FLASKY_ADMIN=ADMIN,
        )

    # ------------------------------------------------------------------- counting

    def outbox(self) -> list[OutboxRow]:
        with self.app.app_context():
            query = select(Email.message_id, Email.status, Email.attempts, Email.last_error)
            rows = [OutboxRow(*row) for row in db.session.execute(query)]
            db.session.remove()
            return rows

    def longest_claim(self) -> float:
        """Seconds since the oldest row now `sending` was claimed (0 when none is)."""
        with self.app.app_context():
            query = select(func.min(Email.updated_at)).where(Email.status == EmailStatus.SENDING)
            oldest = db.session.scalar(query)
            db.session.remove()
        return 0.0 if oldest is None else (utcnow() - oldest).total_seconds()

    def received(self) -> Counter[str]:
        """How many times the SMTP server accepted each Message-ID."""
        return Counter(message_id_of(m.raw) or "<none>" for m in list(self.smtp.messages))

    def wait_for_deliveries(self, count: int, timeout: float = 60.0) -> None:
        """Wait until the SMTP server has accepted `count` messages: the fault's moment."""
        wait_until(lambda: len(self.smtp.messages) >= count, timeout, f"{count} deliveries", 0.05)

    def wait_drained(self, timeout: float = 60.0) -> float:
        """Wait until every committed email is `sent` and received; return when that was seen."""

        def drained() -> bool:
            rows = self.outbox()
            received = self.received()
            return all(r.status == EmailStatus.SENT and r.message_id in received for r in rows)

        try:
            wait_until(drained, timeout, "every email to be sent and received", interval=0.2)
        except TimeoutError as exc:
            statuses = Counter(r.status for r in self.outbox())
            raise TimeoutError(f"{exc}; outbox: {dict(statuses)}") from None
        return time.monotonic()
