"""Flower, behind basic auth, shows every send_email task with nothing in it but the email id.

A worker and Flower run as subprocesses (`celery -A worker worker|flower`, as in production);
the email is queued by posting the form through this process's app.
"""

from __future__ import annotations

import ast
import os
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from celeryconfig import SWEEP_OUTBOX_TASK
from devtools.ports import free_port
from devtools.postgres import PostgresDatabase
from devtools.processes import Process, running
from devtools.smtp_server import SMTPServer
from devtools.waiting import wait_until
from devtools.webclient import Client
from tests.forms import post_name
from tests.integration.conftest import ADMIN, app_settings, emails, migrate
from web import create_app
from web.extensions import db
from web.models import Email, utcnow
from web.outbox.api import SEND_EMAIL_TASK

pytestmark = pytest.mark.slow

FLOWER_USER = "ops"
SECRET_KEY = "secret-key-flower-must-not-show"
MAIL_PASSWORD = "mail-password-flower-must-not-show"
CELERY = [sys.executable, "-m", "celery", "-A", "worker"]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated database of its own (PostgreSQL, as in production)."""
    with PostgresDatabase() as database:
        migrate(database.url)
        yield database.url


@pytest.fixture
def flask_app(postgres_url: str, redis_url: str, smtp_server: SMTPServer) -> Iterator[Flask]:
    app = create_app("testing", **app_settings(postgres_url, redis_url, smtp_server.port))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@dataclass
class FlowerStack:
    """A worker and Flower, as subprocesses, and a client of Flower's API."""

    env: dict[str, str]
    worker: Process
    flower: Process
    base: str
    api: Client


@pytest.fixture
def stack(
    postgres_url: str,
    redis_url: str,
    smtp_server: SMTPServer,
    tmp_path: Path,
    processes: list[Process],
) -> FlowerStack:
    """A worker (its log in tmp_path/worker.log) and Flower, started once Flower has seen the
    worker: from then on it sees every task's events (events are not kept)."""
    password, port = secrets.token_urlsafe(16), free_port()
    env = {
        **os.environ,
        "FLASKY_CONFIG": "testing",
        "FLASKY_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "FLASKY_ADMIN": ADMIN,
        # Secrets the worker holds, which Flower must never show (checked below).
        "SECRET_KEY": SECRET_KEY,
        "MAIL_PASSWORD": MAIL_PASSWORD,
        "FLASKY_SWEEP_INTERVAL": "0.5",
        "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
        "FLOWER_PORT": str(port),
        "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{password}",
    }
    worker = Process("worker", [*CELERY, "worker", "--loglevel", "INFO", "-c", "1"], env, tmp_path)
    flower = Process("flower", [*CELERY, "flower"], env, tmp_path)
    processes.extend([worker, flower])
    base = f"http://127.0.0.1:{port}"
    api = Client(base, auth=(FLOWER_USER, password))

    def worker_seen_by_flower() -> bool:
        running(worker)
        running(flower)
        try:
            return any(api.get("/api/workers?status=1").json().values())
        except OSError:
            return False

    wait_until(worker_seen_by_flower, 40, "Flower to receive the worker's events")
    return FlowerStack(env, worker, flower, base, api)


def test_flower_shows_the_send_email_task_and_only_the_email_id(
    flask_app: Flask, smtp_server: SMTPServer, stack: FlowerStack
) -> None:
    api = stack.api
    name = "Ottilie Flowerbed"
    assert post_name(flask_app.test_client(), name).status_code == 302
    (email,) = emails(flask_app)
    smtp_server.wait_for_messages(1, timeout=20)

    def send_email_succeeded() -> list[dict[str, Any]]:
        tasks = api.get("/api/tasks").json().values()
        return [t for t in tasks if t["name"] == SEND_EMAIL_TASK and t["state"] == "SUCCESS"]

    (task,) = wait_until(send_email_succeeded, 20, "Flower to show the task's success")
    assert ast.literal_eval(task["args"]) in ([[email.id]], ([email.id],))  # a batch of one id
    assert ast.literal_eval(task["kwargs"]) == {}
    worker_name = next(iter(api.get("/api/workers?status=1").json()))
    for path in (
        "/api/tasks",
        f"/api/task/info/{task['uuid']}",
        f"/worker/{worker_name}",  # the worker's page, with its whole configuration
    ):
        reply = api.get(path)
        assert reply.status == 200
        for private in (ADMIN, name, SECRET_KEY, MAIL_PASSWORD):
            assert private not in reply.body, f"{private!r} shown by Flower's {path}"

    assert "task_soft_time_limit" in api.get(f"/worker/{worker_name}").body  # it has the config

    anonymous = Client(stack.base)
    assert anonymous.get("/api/tasks").status == 401
    assert anonymous.get("/api/workers").status == 401


def test_flower_shows_a_failed_email_as_failure_and_only_the_sweeps_that_acted(
    flask_app: Flask,
    smtp_server: SMTPServer,
    stack: FlowerStack,
    tmp_path: Path,
    processes: list[Process],
) -> None:
    api, worker = stack.api, stack.worker
    processes.append(Process("beat", [*CELERY, "beat", "--loglevel", "INFO"], stack.env, tmp_path))

    def tasks(name: str) -> list[dict[str, Any]]:
        return [t for t in api.get("/api/tasks").json().values() if t["name"] == name]

    smtp_server.reply_at("eom", "550 5.7.1 Message rejected as spam")
    assert post_name(flask_app.test_client(), "Rejected Rita").status_code == 302
    (task,) = wait_until(
        lambda: [t for t in tasks(SEND_EMAIL_TASK) if t["state"] == "FAILURE"],
        20,
        "Flower to show the task's failure",
    )
    (email,) = emails(flask_app)
    assert email.status == "failed"
    assert (
        f"email {email.id}: DATA refused: 550 5.7.1 Message rejected as spam" in task["exception"]
    )
    # Beat has run sweeps all along, each finding nothing to publish: none is listed.
    wait_until(lambda: "sweep_outbox" in worker.output(), 10, "a sweep to run")
    time.sleep(2)  # four more sweeps
    assert tasks(SWEEP_OUTBOX_TASK) == []
    # One expected failure is one INFO line in the worker's log, not an ERROR with a traceback.
    log = worker.output()
    assert "Traceback" not in log and " ERROR" not in log
    assert "raised expected: EmailsFailed" in log
    assert len(tasks(SEND_EMAIL_TASK)) == 1  # not retried

    # A sweep that does publish (an email that was never published) is listed.
    with flask_app.app_context():
        db.session.execute(
            db.update(Email).values(
                status="queued", attempts=0, next_attempt_at=utcnow(), lease_expires_at=None
            )
        )
        db.session.commit()
    (sweep,) = wait_until(lambda: tasks(SWEEP_OUTBOX_TASK), 20, "Flower to list a sweep")
    assert sweep["state"] == "SUCCESS"
    assert "published 1, marked failed 0" in sweep["result"]
