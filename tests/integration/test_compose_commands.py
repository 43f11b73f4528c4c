"""The compose file's commands, run here the way its containers run them (no Docker here).

Every command and healthcheck is read from docker-compose.yml, interpolated with .env.example
(plus this test's secrets) as Compose would, and run as a subprocess with the service's own
environment from the file. Only what points at the other containers is replaced: this test's
Redis, a fresh PostgreSQL database (which the web command itself must migrate), the test SMTP
server, and free ports.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from devtools.ports import free_port
from devtools.postgres import POSTGRES_ADMIN_URL, PostgresDatabase
from devtools.processes import Process, running
from devtools.smtp_server import SMTPServer
from devtools.waiting import wait_until
from devtools.webclient import Client, csrf_token
from tests.integration.compose_file import (
    ROOT,
    command,
    healthcheck,
    interpolate,
    load_compose,
    read_dotenv,
)
from tests.integration.conftest import ADMIN

pytestmark = pytest.mark.slow

FLOWER_USER = "ops"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return load_compose()["services"]


@pytest.fixture
def database() -> Iterator[PostgresDatabase]:
    """An empty database: nothing but the web command may create the schema."""
    with PostgresDatabase() as database:
        yield database


def _in_workdir(args: list[str]) -> list[str]:
    """A relative program path is relative to the image's WORKDIR, the project root here."""
    program = args[0]
    return [str(ROOT / program) if program.startswith("./") else program, *args[1:]]


def test_the_app_services_commands_serve_the_form_and_deliver_its_email(
    services: dict[str, Any],
    database: PostgresDatabase,
    redis_url: str,
    smtp_server: SMTPServer,
    tmp_path: Path,
    processes: list[Process],
) -> None:
    flower_password = secrets.token_urlsafe(16)
    dotenv = read_dotenv() | {
        "SECRET_KEY": secrets.token_hex(),
        # Required by the file, empty in .env.example; DATABASE_URL is replaced below anyway.
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{flower_password}",
        "WORKER_CONCURRENCY": "1",
        "WEB_CONCURRENCY": "1",  # each gunicorn worker builds the app: keep the test quick
    }
    web_port, flower_port, hostname = free_port(), free_port(), socket.gethostname()
    neighbours = {
        "DATABASE_URL": database.url,
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "FLASKY_INSTANCE_PATH": str(tmp_path / "instance"),  # the image's ENV
        "CELERY_BEAT_SCHEDULE": str(tmp_path / "celerybeat-schedule"),
        "FLASKY_SWEEP_INTERVAL": "1",  # so that beat shows its work within the test
        "PORT": str(web_port),
        "FLOWER_PORT": str(flower_port),
        "HOSTNAME": hostname,  # what Docker sets in every container
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
    }

    def environment(service: str) -> dict[str, str]:
        own = {
            key: interpolate(str(value), dotenv)
            for key, value in services[service]["environment"].items()
        }
        return {**os.environ, **own, **neighbours}

    started = {}
    for service in ("web", "worker", "beat", "flower"):
        args = _in_workdir(command(services[service], dotenv))
        started[service] = Process(service, args, environment(service), tmp_path)
        processes.append(started[service])
    web, worker = started["web"], started["worker"]

    site = Client(f"http://127.0.0.1:{web_port}")
    wait_until(
        lambda: all(map(running, processes)) and site.answers("/readyz"), 60, "web's /readyz"
    )
    assert "Running upgrade" in web.output()  # the web command applied the migrations
    wait_until(lambda: running(worker) and " ready." in worker.output(), 30, "the worker")

    user = "Compose Tester"
    token = csrf_token(site.get("/").body)
    reply = site.post_form("/", {"name": user, "csrf_token": token})
    assert reply.status == 200 and user in reply.body  # after the redirect
    (message,) = smtp_server.wait_for_messages(1, timeout=30)
    assert message.rcpt_tos == [ADMIN]
    assert user in message.parsed().get_body(("plain",)).get_content()

    # beat's schedule reaches the worker: the sweeper runs.
    sweep = re.compile(r"Task flasky\.sweep_outbox\[[^\]]+\] succeeded")
    wait_until(lambda: sweep.search(worker.output()), 20, "a sweep by beat and the worker")

    flower_base = f"http://127.0.0.1:{flower_port}"
    flower = Client(flower_base, auth=(FLOWER_USER, flower_password))
    wait_until(lambda: running(started["flower"]) and flower.answers("/healthcheck"), 30, "Flower")
    for service in ("web", "worker", "flower"):
        result = subprocess.run(
            healthcheck(services[service], dotenv),
            env=environment(service),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, f"{service} healthcheck:\n{result.stdout}{result.stderr}"

    workers = flower.get("/api/workers?refresh=1")
    assert workers.status == 200
    assert f"celery@{hostname}" in workers.json()
    assert Client(flower_base).get("/api/workers").status == 401


def test_the_redis_command_is_what_redis_server_runs(
    services: dict[str, Any], tmp_path: Path, processes: list[Process]
) -> None:
    port = free_port()
    # The container listens on 6379 and writes to /data; here a free port and a temporary dir.
    local = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    processes.append(Process("redis", command(services["redis"], {}) + local, os.environ, tmp_path))
    client = redis.Redis(port=port, socket_timeout=2)
    wait_until(lambda: running(processes[0]) and client.ping(), 10, "redis-server")
    settings = {
        name: client.config_get(name)[name]
        for name in ("appendonly", "appendfsync", "maxmemory-policy")
    }
    assert settings == {
        "appendonly": "yes",
        "appendfsync": "everysec",
        "maxmemory-policy": "noeviction",
    }
    client.close()


def test_the_postgres_healthcheck_runs(services: dict[str, Any]) -> None:
    server = urlsplit(POSTGRES_ADMIN_URL)
    environment = {
        **os.environ,
        # What the postgres image's container has, and where this machine's server is.
        "POSTGRES_USER": server.username or "postgres",
        "POSTGRES_DB": server.path.lstrip("/"),
        "PGHOST": server.hostname or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
    }
    args = healthcheck(services["postgres"], read_dotenv())
    assert subprocess.run(args, env=environment, timeout=30).returncode == 0
