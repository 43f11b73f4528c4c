"""Flower, behind basic auth, shows every send_email task with nothing in it but the email id.

A worker and Flower run as subprocesses (`celery -A worker worker|flower`, as in production);
the email is queued by posting the form through this process's app.
"""

from __future__ import annotations

import ast
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

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
from web.outbox.api import SEND_EMAIL_TASK

pytestmark = pytest.mark.slow

FLOWER_USER = "ops"
SECRET_KEY = "secret-key-flower-must-not-show"
MAIL_PASSWORD = "mail-password-flower-must-not-show"


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


def test_flower_shows_the_send_email_task_and_only_the_email_id(
    flask_app: Flask,
    postgres_url: str,
    redis_url: str,
    smtp_server: SMTPServer,
    tmp_path: Path,
    processes: list[Process],
) -> None:
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
        "FLOWER_PORT": str(port),
        "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{password}",
    }
    celery = [sys.executable, "-m", "celery", "-A", "worker"]
    worker = Process("worker", [*celery, "worker", "--loglevel", "INFO", "-c", "1"], env, tmp_path)
    processes.append(worker)
    flower = Process("flower", [*celery, "flower"], env, tmp_path)
    processes.append(flower)
    base = f"http://127.0.0.1:{port}"
    api = Client(base, auth=(FLOWER_USER, password))

    def worker_seen_by_flower() -> bool:
        """Flower has the worker's events: it will see the task's (events are not kept)."""
        running(worker)
        running(flower)
        try:
            online = api.get("/api/workers?status=1").json()
        except OSError:
            return False
        return any(online.values())

    wait_until(worker_seen_by_flower, 40, "Flower to receive the worker's events")

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

    anonymous = Client(base)
    assert anonymous.get("/api/tasks").status == 401
    assert anonymous.get("/api/workers").status == 401
