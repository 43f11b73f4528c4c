"""The environment of a flasky process (web, worker, beat, a flask command), built one way for
the dev runner, the tests and the benchmarks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "admin@example.com"


def flasky_env(
    config: str,
    instance: Path,
    *,
    redis_url: str,
    mail_port: int,
    database_url: str | None = None,
    settings: Mapping[str, str] | None = None,
    environment_wins: bool = False,
) -> dict[str, str]:
    """This process's environment plus flasky's settings: the FLASKY_CONFIG `config`, Redis,
    an SMTP server on 127.0.0.1:`mail_port`, the database (SQLite in `instance` without one)
    and `settings`.

    The tests' and the benchmarks' settings win over this process's environment (their services
    are throwaways); the dev runner's are defaults that the developer's environment overrides
    (`environment_wins`). The instance folder, which holds beat's schedule, and unbuffered
    output (log lines show up as they happen) are always set.
    """
    app = {
        "FLASKY_CONFIG": config,
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(mail_port),
        "FLASKY_ADMIN": ADMIN,
        **({"DATABASE_URL": database_url} if database_url else {}),
        **(settings or {}),
    }
    process = {
        "FLASKY_INSTANCE_PATH": str(instance),
        "CELERY_BEAT_SCHEDULE": str(instance / "celerybeat-schedule"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    first, then = (app, os.environ) if environment_wins else (os.environ, app)
    return {**first, **then, **process}
