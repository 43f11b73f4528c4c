"""Start-up with a bad configuration: one clear line, as `flask` and `celery` print it.

The rules for each setting are tested without a subprocess in tests/unit/test_config.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.environment import ROOT
from web import CONFIG_ERROR_EXIT_STATUS


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
