"""Invalid email settings: stopped at start-up with one line, or failed with a clear reason.

tests/integration/test_config.py checks `flask` and `celery inspect ping`; here are the entry
points that
production runs (the worker, beat, gunicorn), and the settings that only the SMTP server can
refuse: a host that does not resolve, a port where nothing listens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.ports import free_port
from devtools.waiting import wait_until
from tests.integration.faults.stack import Stack
from tests.integration.faults.traffic import send_in_process
from web import CONFIG_ERROR_EXIT_STATUS
from web.models import EmailStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BAD_SETTINGS = [
    ({"MAIL_PORT": "0"}, "MAIL_PORT"),
    ({"FLASKY_ADMIN": "admin@example.com, boss@example.com"}, "FLASKY_ADMIN"),
]


def _start_up(args: list[str], settings: dict[str, str], tmp_path: Path, timeout: float):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASKY_", "MAIL_"))}
    env.pop("SECRET_KEY", None)
    env.update(FLASKY_CONFIG="testing", FLASKY_INSTANCE_PATH=str(tmp_path), **settings)
    return subprocess.run(
        [sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("command", "settings", "variable"),
    [("worker", *BAD_SETTINGS[0]), ("beat", *BAD_SETTINGS[1])],
)
def test_bad_mail_settings_stop_the_worker_and_beat_with_one_line(
    tmp_path: Path, command: str, settings: dict[str, str], variable: str
) -> None:
    result = _start_up(["celery", "-A", "worker", command], settings, tmp_path, timeout=60)
    assert result.returncode == CONFIG_ERROR_EXIT_STATUS, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("flasky: configuration error: ") and variable in line


def test_bad_mail_settings_stop_gunicorn(tmp_path: Path) -> None:
    settings, variable = BAD_SETTINGS[0]
    args = ["gunicorn", "--bind", f"127.0.0.1:{free_port()}", "--no-control-socket"]
    try:
        result = _start_up([*args, "web:create_app()"], settings, tmp_path, timeout=8)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"gunicorn was still restarting its workers after 8 s:\n{exc.stderr!r}")
    assert result.returncode != 0
    assert f"flasky: configuration error: {variable}" in result.stderr


@pytest.mark.parametrize(
    ("server", "port", "reason"),
    [
        ("mail.does-not-resolve.invalid", 25, "connection to {address} failed: "),
        ("127.0.0.1", 0, "connection to {address} failed: [Errno 111] Connection refused"),
    ],
    ids=["host-does-not-resolve", "nothing-listens"],
)
def test_unreachable_smtp_server_fails_each_email_after_bounded_attempts(
    stack: Stack, server: str, port: int, reason: str
) -> None:
    attempts, emails = 3, 5
    port = port or free_port()
    reason = reason.format(address=f"{server}:{port}")
    stack.settings.update(
        MAIL_SERVER=server,
        MAIL_PORT=str(port),
        FLASKY_MAX_ATTEMPTS=str(attempts),
        FLASKY_RETRY_BACKOFF_BASE="0.1",
        FLASKY_RETRY_BACKOFF_CAP="0.2",
    )
    stack.start_beat()
    worker = stack.start_worker()
    for i in range(emails):
        assert send_in_process(stack.app, f"unreachable-{i}")

    def all_failed() -> bool:
        rows = stack.outbox()
        return len(rows) == emails and all(r.status == EmailStatus.FAILED for r in rows)

    wait_until(all_failed, 30, "every email to be failed", 0.2)
    time.sleep(2 * float(stack.settings["FLASKY_SWEEP_INTERVAL"]))  # the sweeper leaves them
    rows = stack.outbox()
    assert {row.status for row in rows} == {EmailStatus.FAILED}
    assert {row.attempts for row in rows} == {attempts}
    for row in rows:
        assert row.last_error and row.last_error.startswith(
            f"gave up after {attempts} attempts: {reason}"
        ), row.last_error
    assert worker.popen.poll() is None
    log = worker.output()
    assert "exited with" not in log and "Traceback" not in log, log[-3000:]
