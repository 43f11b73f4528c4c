"""Everything one benchmark run owns: Redis, a PostgreSQL database, the SMTP sink, processes.

`Stack` starts the services, gives every process the same environment, and stops whatever it
started when the run ends, normally, on an error or on Ctrl-C (the caller closes it in a
`finally`).
"""

from __future__ import annotations

import os
import sys
from functools import cached_property
from pathlib import Path

from flask import Flask

from bench.sink import Sink
from devtools.environment import ROOT, flasky_env
from devtools.ports import free_port, port_answers
from devtools.postgres import PostgresDatabase
from devtools.processes import Process, running
from devtools.redis_server import RedisServer
from devtools.waiting import wait_until

POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# One gunicorn configuration for every app measured: 4 processes of 4 threads each.
GUNICORN_ARGS = ["--workers", "4", "--worker-class", "gthread", "--threads", "4"]


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis = RedisServer(workdir)
        self.database = PostgresDatabase("flasky_bench", POSTGRES_ADMIN_URL)
        self.sink = Sink(free_port(), workdir / "sink-arrivals.log")
        self._processes: list[Process] = []
        self._database_created = False

    @cached_property
    def env(self) -> dict[str, str]:
        """The environment of every process of the run (and of the runner's own flasky app)."""
        settings = {
            # Production refuses a key shorter than 32 characters (web/secret_strength.py).
            "SECRET_KEY": "bench-only-key-production-accepts-0123456789",
            # The form's per-address limit (10 a minute in production) would stop the load at
            # its 11th POST: every request comes from 127.0.0.1. The limiter stays on, counting
            # in Redis as in production, with a limit the benchmark never reaches.
            "FLASKY_FORM_RATE_LIMIT": "1000000 per minute",
        }
        return flasky_env(
            "production",
            self.workdir / "instance",
            redis_url=self.redis.url,
            mail_port=self.sink.port,
            database_url=self.database.url,
            settings=settings,
        )

    def start(self) -> None:
        self.sink.start()
        self.redis.start()
        self.database.create()
        self._database_created = True
        os.environ.update(self.env)  # the runner's own flasky app reads the same settings
        self._migrate()

    def close(self) -> None:
        """Stop every process, then the services. Safe to call after a partial start."""
        for process in reversed(self._processes):
            process.stop(timeout=20, whole_group=False)
        self._processes.clear()
        if "flask_app" in self.__dict__:
            self._dispose_engine()
        if self._database_created:
            self.database.drop()
        self.redis.stop()
        self.sink.stop()

    @cached_property
    def flask_app(self) -> Flask:
        """flasky's app in the runner: queues emails exactly as the web does."""
        from web import create_app

        return create_app()

    def _migrate(self) -> None:
        """`flask --app web db upgrade`, as a deployment runs it (its output in the log dir)."""
        process = self.start_process(
            "migrate", [sys.executable, "-m", "flask", "--app", "web", "db", "upgrade"]
        )
        if process.popen.wait(timeout=120) != 0:
            running(process)
        self.stop_process(process)

    def _dispose_engine(self) -> None:
        from web.extensions import db

        with self.flask_app.app_context():
            db.session.remove()
            db.engine.dispose()

    def reset(self) -> None:
        """An empty outbox, no users, an empty Redis: the state every repeat starts from."""
        from web.extensions import db

        with self.flask_app.app_context():
            db.session.remove()
        self.database.empty()
        self.redis.client().flushall()

    def start_process(
        self, name: str, args: list[str], extra_env: dict[str, str] | None = None
    ) -> Process:
        process = Process(
            f"{name}-{len(self._processes)}",
            args,
            {**self.env, **(extra_env or {})},
            self.workdir,
            cwd=ROOT,
        )
        self._processes.append(process)
        return process

    def stop_process(self, process: Process) -> None:
        process.stop(timeout=20, whole_group=False)
        self._processes.remove(process)

    def start_worker(
        self, *args: str, app: str = "worker", extra_env: dict[str, str] | None = None
    ) -> Process:
        """`celery -A <app> worker <args>`, once it says it is ready."""
        process = self.start_process(
            "worker",
            [sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel", "INFO", *args],
            extra_env,
        )
        wait_until(
            lambda: running(process) and " ready." in process.output(),
            60,
            f"{process.name} to be ready",
            interval=0.02,
        )
        return process

    def start_beat(self, extra_env: dict[str, str] | None = None) -> Process:
        return self.start_process(
            "beat",
            [sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel", "INFO"],
            extra_env,
        )

    def start_gunicorn(self, app_spec: str) -> tuple[Process, int]:
        """gunicorn with GUNICORN_ARGS serving `app_spec`; returns it and its port."""
        port = free_port()
        process = self.start_process(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                *GUNICORN_ARGS,
                "--bind",
                f"127.0.0.1:{port}",
                app_spec,
            ],
        )
        wait_until(lambda: running(process) and port_answers(port), 60, f"gunicorn {app_spec}")
        return process, port
