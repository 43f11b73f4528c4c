"""flasky's web app, built by `create_app()`: `flask --app web`, `gunicorn "web:create_app()"`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from flask import Flask

from web.config import ConfigError, load_config
from web.extensions import csrf, db, migrate
from worker.celery_app import celery_init_app

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config_name: str | None = None, **overrides: Any) -> Flask:
    """Build the app for `config_name` (default: `FLASKY_CONFIG`, else production).

    `overrides` replace loaded settings; tests use them. An invalid configuration stops
    start-up with one line naming the variable.
    """
    instance_path = os.environ.get("FLASKY_INSTANCE_PATH") or str(PROJECT_ROOT / "instance")
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=os.path.abspath(instance_path),
    )
    try:
        app.config.update(load_config(config_name, os.environ, app.instance_path))
        import celeryconfig  # noqa: F401 - checks the queue's settings (raises ConfigError)
    except ConfigError as exc:
        _exit_on_bad_config(exc)
    app.config.update(overrides)
    os.makedirs(app.instance_path, exist_ok=True)
    _configure_logging(app)

    from flask_mail import Mail

    from web import cli, mail_preview, security
    from web.admin import admin
    from web.health import health
    from web.limiter import limiter
    from web.outbox import register_session_hooks
    from web.views import main

    db.init_app(app)
    _tune_sqlite(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    Mail(app)
    celery_init_app(app, app.config.get("CELERY"))
    register_session_hooks()
    app.register_blueprint(main)
    app.register_blueprint(health)
    app.register_blueprint(admin)
    mail_preview.register(app)  # development only
    security.register(app)
    cli.register(app)
    return app


# Exit status for a configuration error. 3 is the one status that makes gunicorn stop, instead
# of starting a new worker (that fails the same way) forever.
CONFIG_ERROR_EXIT_STATUS = 3


def _exit_on_bad_config(exc: ConfigError) -> None:
    """One clear line on stderr and exit status 3: no traceback for a configuration mistake."""
    print(f"flasky: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(CONFIG_ERROR_EXIT_STATUS)


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def _tune_sqlite(app: Flask) -> None:
    """SQLite only: wait for locks instead of failing, let readers run beside a writer, and
    enforce foreign keys (deleting an email deletes its attachments, as on PostgreSQL)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
