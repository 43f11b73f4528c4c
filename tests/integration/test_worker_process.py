"""The worker and beat as they run in production: `celery -A worker worker|beat` subprocesses."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from devtools.processes import Process
from devtools.smtp_server import SMTPServer
from devtools.waiting import wait_until
from tests.forms import post_name
from tests.integration.conftest import ADMIN, subprocess_env, wait_for_status

pytestmark = pytest.mark.slow


@pytest.fixture
def start(
    database_url: str, redis_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> Iterator[Callable[[str], Process]]:
    """Start `celery -A worker <command>` with this test's database, Redis and SMTP server."""
    env = subprocess_env(database_url, redis_url, smtp_server.port, tmp_path)
    started: list[Process] = []

    def start_command(command: str, *args: str) -> Process:
        process = Process(
            f"{command}-{len(started)}",
            [sys.executable, "-m", "celery", "-A", "worker", command, "--loglevel", "INFO", *args],
            env,
            tmp_path,
        )
        started.append(process)
        return process

    yield start_command
    for process in started:
        process.stop()


def _worker_ready(process: Process) -> bool:
    assert process.popen.poll() is None, f"worker exited:\n{process.output()}"
    return " ready." in process.output()


def test_form_to_smtp_through_worker_and_beat_processes_even_when_redis_loses_everything(
    app: Flask,
    client: FlaskClient,
    redis_url: str,
    smtp_server: SMTPServer,
    start: Callable[..., Process],
) -> None:
    worker = start("worker", "--concurrency", "2")
    beat = start("beat")
    wait_until(lambda: _worker_ready(worker), 30, "the worker to be ready")

    assert post_name(client, "Uma").status_code == 302
    (message,) = smtp_server.wait_for_messages(1, timeout=20)
    assert "Uma" in message.parsed().get_body(("plain",)).get_content()
    wait_for_status(app, "sent")

    # A deploy stops the worker; meanwhile a new user arrives and Redis loses its data.
    worker.signal(signal.SIGTERM)
    worker.popen.wait(timeout=30)
    assert post_name(client, "Victor").status_code == 302
    redis.Redis.from_url(redis_url).flushall()

    worker = start("worker", "--concurrency", "2")
    messages = smtp_server.wait_for_messages(2, timeout=30)  # the sweeper re-published it
    assert "Victor" in messages[1].parsed().get_body(("plain",)).get_content()
    rows = wait_for_status(app, "sent", count=2)
    assert [row.attempts for row in rows] == [1, 1]
    assert "sweeper published 1 emails" in worker.output() + beat.output()
    assert len({m.message_id for m in smtp_server.messages}) == len(smtp_server.messages) == 2

    # Every state change is logged with the email id and the task id; no body, no address.
    logs = worker.output()
    task_id = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.search(rf"email {rows[1].id} claimed by task {task_id} \(attempt 1\)", logs)
    assert re.search(rf"email {rows[1].id} sent by task {task_id}: 250", logs)
    for private in ("Victor", "A new user signed up", ADMIN):
        assert private not in logs + beat.output()
