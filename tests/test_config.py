"""Configuration from the environment: defaults, and one clear line for every mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from web import CONFIG_ERROR_EXIT_STATUS
from web.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLASKY_", "MAIL_"))}
    clean.pop("SECRET_KEY", None)
    clean.update({"FLASKY_INSTANCE_PATH": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=clean, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "x", "MAIL_PORT": "smtp"}, "MAIL_PORT"),
        ({"SECRET_KEY": "x", "MAIL_PORT": "70000"}, "MAIL_PORT"),
        ({"SECRET_KEY": "x", "MAIL_USE_TLS": "maybe"}, "MAIL_USE_TLS"),
        ({"SECRET_KEY": "x", "FLASKY_ADMIN": "not an address"}, "FLASKY_ADMIN"),
        ({"SECRET_KEY": "x", "FLASKY_CONFIG": "staging"}, "FLASKY_CONFIG"),
        ({"SECRET_KEY": "x", "CELERY_TASK_TIME_LIMIT": "10"}, "CELERY_TASK_TIME_LIMIT"),
    ],
)
@pytest.mark.parametrize(
    "command", [["flask", "--app", "web", "routes"], ["celery", "-A", "worker", "inspect", "ping"]]
)
def test_bad_configuration_stops_start_up_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str, command: list[str]
) -> None:
    result = _run(command, tmp_path, **env)
    assert result.returncode == CONFIG_ERROR_EXIT_STATUS, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("flasky: configuration error:") and variable in lines[0]
    assert "Traceback" not in result.stderr


def test_development_runs_without_a_secret_key(tmp_path: Path) -> None:
    result = _run(["flask", "--app", "web", "routes"], tmp_path, FLASKY_CONFIG="development")
    assert result.returncode == 0, result.stderr
    assert "main.index" in result.stdout


def test_defaults_use_sqlite_in_the_instance_folder_and_the_local_redis(tmp_path: Path) -> None:
    config = load_config("production", {"SECRET_KEY": "k"}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/flasky.sqlite"
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert config["MAIL_PORT"] == 25 and config["MAIL_USE_TLS"] is False
    assert config["FLASKY_MAIL_SUBJECT_PREFIX"] == "[Flasky]"
    assert config["FLASKY_ADMIN"] is None


def test_the_books_gmail_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    env = {
        "SECRET_KEY": "k",
        "MAIL_SERVER": "smtp.googlemail.com",
        "MAIL_PORT": "587",
        "MAIL_USE_TLS": "true",
        "MAIL_USERNAME": "me@gmail.com",
        "MAIL_PASSWORD": "app-password",
        "DATABASE_URL": "postgres://u@db/flasky",
    }
    config = load_config("production", env, str(tmp_path))
    assert (config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_USE_TLS"]) == (
        "smtp.googlemail.com",
        587,
        True,
    )
    assert config["MAIL_USERNAME"] == "me@gmail.com" and config["MAIL_PASSWORD"] == "app-password"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/flasky"


def test_tls_and_ssl_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAIL_USE_TLS and MAIL_USE_SSL"):
        load_config("testing", {"MAIL_USE_TLS": "1", "MAIL_USE_SSL": "1"}, str(tmp_path))


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAIL_CA_FILE"):
        load_config("testing", {"MAIL_CA_FILE": str(tmp_path / "nope.pem")}, str(tmp_path))
