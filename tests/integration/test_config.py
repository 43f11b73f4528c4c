"""Start-up with a bad configuration: one clear line, as `flask`, `celery` and gunicorn print it;
the `flask` command's defaults in the clone (.flaskenv); an unmigrated database.

The rules for each setting are tested without a subprocess in tests/unit/test_config.py, the
schema check in tests/unit/test_schema.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.ports import free_port, port_answers
from devtools.processes import Process, running
from devtools.waiting import wait_until
from devtools.webclient import Client, csrf_token
from web import CONFIG_ERROR_EXIT_STATUS

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
UPGRADE = "run flask --app web db upgrade"
NO_TABLES = f"flasky: database error: the database has no tables: {UPGRADE}"

# A SECRET_KEY that production accepts (web/secret_strength.py): 32 characters, no placeholder.
KEY = "production-key-for-the-tests-0123456789"


def _env(tmp_path: Path, *, dotenv: bool = False, **env: str) -> dict[str, str]:
    """This process's environment without flasky's settings (nor Flask's, nor the book's
    FLASK_CONFIG), an instance folder of the test's own, then `env`.

    Without `dotenv`, Flask reads no .flaskenv, as in the image, which has no python-dotenv:
    the deployment's view. With it, the view of someone typing `flask` in the clone.
    """
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASKY_", "FLASK_", "MAIL_"))
        and key not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "RATELIMIT_STORAGE_URI")
    }
    clean["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"  # bin/web runs `flask`
    if not dotenv:
        clean["FLASK_SKIP_DOTENV"] = "1"
    return {**clean, "FLASKY_INSTANCE_PATH": str(tmp_path), **env}


def _run(
    args: list[str], tmp_path: Path, *, cwd: Path = ROOT, dotenv: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m ARGS` (or the program ARGS[0] when it is a path), run to its end."""
    command = args if args[0].startswith("/") else [sys.executable, "-m", *args]
    return subprocess.run(
        command, cwd=cwd, env=_env(tmp_path, dotenv=dotenv, **env), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


def _one_line(
    result: subprocess.CompletedProcess[str], status: int = CONFIG_ERROR_EXIT_STATUS
) -> str:
    """The one line on stderr, after checking the exit status and that nothing else came."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": KEY, "MAIL_PORT": "smtp"}, "MAIL_PORT"),
        ({"SECRET_KEY": KEY, "MAIL_PORT": "70000"}, "MAIL_PORT"),
        ({"SECRET_KEY": KEY, "MAIL_USE_TLS": "maybe"}, "MAIL_USE_TLS"),
        ({"SECRET_KEY": KEY, "FLASKY_ADMIN": "not an address"}, "FLASKY_ADMIN"),
        ({"SECRET_KEY": KEY, "FLASKY_CONFIG": "staging"}, "FLASKY_CONFIG"),
        ({"SECRET_KEY": KEY, "CELERY_TASK_TIME_LIMIT": "10"}, "CELERY_TASK_TIME_LIMIT"),
        ({"SECRET_KEY": KEY, "DATABASE_URL": "foo://bar"}, "DATABASE_URL"),
        ({"SECRET_KEY": KEY, "DATABASE_URL": "mysql://u:pw@db/flasky"}, "DATABASE_URL"),
        ({"SECRET_KEY": KEY, "DATABASE_URL": "postgresql+psycopg2://db/x"}, "DATABASE_URL"),
        ({"SECRET_KEY": KEY, "REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"SECRET_KEY": KEY, "REDIS_URL": "unix:///run/redis.sock"}, "REDIS_URL"),
        ({"FLASK_CONFIG": "development", "FLASKY_CONFIG": "testing"}, "FLASK_CONFIG"),
        ({"FLASK_CONFIG": "default"}, "FLASK_CONFIG"),
    ],
)
@pytest.mark.parametrize(
    "command", [["flask", "--app", "web", "routes"], ["celery", "-A", "worker", "inspect", "ping"]]
)
def test_bad_configuration_stops_start_up_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str, command: list[str]
) -> None:
    line = _one_line(_run(command, tmp_path, **env))
    assert line.startswith("flasky: configuration error:") and variable in line


def test_development_runs_without_a_secret_key(tmp_path: Path) -> None:
    result = _run(["flask", "--app", "web", "routes"], tmp_path, FLASKY_CONFIG="development")
    assert result.returncode == 0, result.stderr
    assert "main.index" in result.stdout


# --- the URLs, as the worker, beat, bin/web and gunicorn stop on them ---------------------------

BAD_URLS = [
    ({"DATABASE_URL": "foo://bar"}, "DATABASE_URL: flasky supports SQLite"),
    ({"REDIS_URL": "http://x"}, "REDIS_URL must be a redis:// or rediss:// URL"),
]


@pytest.mark.parametrize(("settings", "message"), BAD_URLS)
@pytest.mark.parametrize("command", ["worker", "beat"])
def test_a_bad_url_stops_the_worker_and_beat_with_one_line(
    tmp_path: Path, command: str, settings: dict[str, str], message: str
) -> None:
    result = _run(["celery", "-A", "worker", command], tmp_path, SECRET_KEY=KEY, **settings)
    assert _one_line(result).startswith(f"flasky: configuration error: {message}")


@pytest.mark.parametrize(("settings", "message"), BAD_URLS)
def test_a_bad_url_stops_bin_web_with_one_line(
    tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    """bin/web migrates before gunicorn serves: the migration is what stops, status 3."""
    env = {"SECRET_KEY": KEY, "PORT": str(free_port()), **settings}
    result = _run([str(ROOT / "bin" / "web")], tmp_path, **env)
    assert _one_line(result).startswith(f"flasky: configuration error: {message}")


def _gunicorn(port: int) -> list[str]:
    return ["gunicorn", "--bind", f"127.0.0.1:{port}", "--no-control-socket", "web:create_app()"]


def _gunicorn_stops(result: subprocess.CompletedProcess[str], line: str) -> None:
    """gunicorn's master exits with status 3 when a worker does; beside its own log lines
    (`[time] [pid] [LEVEL] ...`), stderr holds `line` once and no traceback."""
    assert result.returncode == CONFIG_ERROR_EXIT_STATUS, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    ours = [text for text in result.stderr.splitlines() if not text.startswith("[")]
    assert ours == [line], result.stderr


@pytest.mark.slow
def test_a_bad_redis_url_stops_gunicorn(tmp_path: Path) -> None:
    result = _run(_gunicorn(free_port()), tmp_path, SECRET_KEY=KEY, REDIS_URL="unix:///run/r")
    _gunicorn_stops(
        result,
        "flasky: configuration error: REDIS_URL must be a redis:// or rediss:// URL such as "
        "redis://127.0.0.1:6379/0 (Unix sockets are not supported), got unix://",
    )


# --- the `flask` command in the clone (.flaskenv), and production without it -------------------

SECRET_KEY_REQUIRED = "flasky: configuration error: SECRET_KEY is required in the production"


def test_flask_in_the_clone_needs_no_app_and_runs_the_development_configuration(
    tmp_path: Path,
) -> None:
    result = _run(["flask", "routes"], tmp_path, dotenv=True)
    assert result.returncode == 0, result.stderr
    assert "mail_preview.index" in result.stdout  # development's template previews
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("settings", "development"),
    [
        ({"FLASK_CONFIG": "testing"}, False),
        ({"FLASK_CONFIG": "production", "SECRET_KEY": KEY}, False),
        ({"FLASK_CONFIG": "development"}, True),
        ({"FLASKY_CONFIG": "testing"}, False),
    ],
)
def test_the_environment_wins_over_the_clones_defaults(
    tmp_path: Path, settings: dict[str, str], development: bool
) -> None:
    result = _run(["flask", "routes"], tmp_path, dotenv=True, **settings)
    assert result.returncode == 0, result.stderr
    assert ("mail_preview.index" in result.stdout) is development


def test_flask_outside_the_clone_defaults_to_production(tmp_path: Path) -> None:
    result = _run(["flask", "--app", "web", "routes"], tmp_path, cwd=tmp_path, dotenv=True)
    assert _one_line(result).startswith(SECRET_KEY_REQUIRED)


@pytest.mark.slow
def test_gunicorn_in_the_clone_defaults_to_production(tmp_path: Path) -> None:
    """gunicorn never reads .flaskenv: without FLASKY_CONFIG it is production, even here."""
    result = _run(_gunicorn(free_port()), tmp_path, dotenv=True)
    (line,) = [text for text in result.stderr.splitlines() if not text.startswith("[")]
    assert line.startswith(SECRET_KEY_REQUIRED), result.stderr
    assert result.returncode == CONFIG_ERROR_EXIT_STATUS


def test_the_readmes_flask_commands_work_in_a_fresh_clone(tmp_path: Path, redis_url: str) -> None:
    """As printed in the README (run with .venv's python): the outbox commands say what to run
    on a fresh database, `db upgrade` makes it, then every one of them works."""

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return _run(["flask", *args], tmp_path, dotenv=True, REDIS_URL=redis_url)

    assert _one_line(flask("--app", "web", "outbox", "stats")) == NO_TABLES
    upgrade = flask("--app", "web", "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert (tmp_path / "flasky.sqlite").is_file()  # the instance folder's, as dev.py's
    queued = flask("--app", "web", "send-test-email", "you@example.com")
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.startswith("queued test email 1 to you@example.com")
    stats = flask("--app", "web", "outbox", "stats")
    assert stats.returncode == 0, stats.stderr
    assert "queued" in stats.stdout
    for args in (["list", "--status", "failed"], ["list", "--status", "scheduled"]):
        listed = flask("--app", "web", "outbox", *args)
        assert listed.returncode == 0, listed.stderr
    retry = flask("--app", "web", "outbox", "retry", "42")
    assert retry.returncode == 1 and "there is no email 42" in retry.stderr
    purge = flask("--app", "web", "outbox", "purge", "--older-than", "30")
    assert purge.returncode == 0 and purge.stdout.startswith("deleted 0 sent emails"), purge


# --- an unmigrated database ------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["flask", "--app", "web", "outbox", "stats"],
        ["flask", "--app", "web", "send-test-email", "you@example.com"],
        ["celery", "-A", "worker", "worker"],
    ],
)
def test_an_unmigrated_database_stops_with_one_line_naming_the_upgrade(
    tmp_path: Path, command: list[str]
) -> None:
    env = {"SECRET_KEY": KEY, "FLASKY_MIGRATION_WAIT": "0", "REDIS_URL": "redis://127.0.0.1:1/0"}
    assert _one_line(_run(command, tmp_path, **env)) == NO_TABLES


@pytest.mark.slow
def test_a_worker_waits_for_the_migrations_then_consumes(
    tmp_path: Path, redis_url: str, processes: list[Process]
) -> None:
    """As compose starts it: beside the web, whose command migrates the database first."""
    env = _env(tmp_path / "instance", SECRET_KEY=KEY, REDIS_URL=redis_url)
    args = ["celery", "-A", "worker", "worker", "--pool", "threads", "--loglevel", "INFO"]
    worker = Process("worker", [sys.executable, "-m", *args], env, log_dir=tmp_path, cwd=ROOT)
    processes.append(worker)
    wait_until(lambda: running(worker) and NO_TABLES in worker.output(), 30, "the worker's line")
    upgrade = _run(["flask", "--app", "web", "db", "upgrade"], tmp_path / "instance", **env)
    assert upgrade.returncode == 0, upgrade.stderr
    wait_until(lambda: running(worker) and " ready." in worker.output(), 30, "the worker")
    log = worker.output()
    assert log.count("flasky: database error") == 1 and "Traceback" not in log, log
    assert f"{NO_TABLES} (the worker waits 60 s for it)" in log


@pytest.mark.slow
def test_gunicorn_on_an_unmigrated_database_answers_503_and_logs_one_line(
    tmp_path: Path, redis_url: str, processes: list[Process]
) -> None:
    port = free_port()
    env = _env(tmp_path / "instance", SECRET_KEY=KEY, REDIS_URL=redis_url)
    web = Process("web", [sys.executable, "-m", *_gunicorn(port)], env, log_dir=tmp_path, cwd=ROOT)
    processes.append(web)
    wait_until(lambda: running(web) and port_answers(port), 30, "gunicorn to listen")

    site = Client(f"http://127.0.0.1:{port}")
    page = site.get("/")  # the form needs no table
    assert page.status == 200
    for name in ("Ada", "Grace"):
        reply = site.post_form("/", {"name": name, "csrf_token": csrf_token(page.body)})
        assert reply.status == 503 and "not migrated" in reply.body
    log = web.output()
    (line,) = [text for text in log.splitlines() if "flasky: database error" in text]
    assert line.endswith(f"ERROR web.schema: {NO_TABLES}")
    assert "Traceback" not in log, log


def test_the_image_gets_no_flaskenv() -> None:
    """Without python-dotenv (the image has none), Flask prints a tip about .flaskenv on every
    `flask` command run beside it; with it, `flask` in the image would default to development."""
    assert ".flaskenv" in (ROOT / ".dockerignore").read_text().split()
