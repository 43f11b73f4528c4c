"""flasky's web app, built by `create_app()`: `flask --app web`, `gunicorn "web:create_app()"`.

`celery_init_app()` binds the app's Celery app to it, as in Flask's own Celery example; the
worker's entry point (worker/__init__.py) takes the Celery app from here.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from celery import Celery, Task
from flask import Flask
from flask_mail import Mail
from sqlalchemy import event

import celeryconfig
from web import cli, health, security, views
from web.admin import views as admin_views
from web.config import ConfigError, check_wait_chain, load_config
from web.extensions import csrf, db, migrate
from web.limiter import limiter
from web.outbox import api, preview

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config_name: str | None = None, **overrides: Any) -> Flask:
    """Build the app for `config_name` (default: `FLASKY_CONFIG`, else production).

    `overrides` replace loaded settings (tests use them); a `CELERY` override is merged into
    the Celery settings built from the rest. An invalid configuration stops start-up with one
    line naming the variable.
    """
    instance_path = os.environ.get("FLASKY_INSTANCE_PATH") or str(PROJECT_ROOT / "instance")
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=os.path.abspath(instance_path),
    )
    celery_overrides = overrides.pop("CELERY", {})
    try:
        app.config.update(load_config(config_name, os.environ, app.instance_path))
        app.config.update(overrides)
        app.config["CELERY"] = celeryconfig.celery_settings(app.config) | celery_overrides
        check_wait_chain(app.config)
    except ConfigError as exc:
        _exit_on_bad_config(exc)
    os.makedirs(app.instance_path, exist_ok=True)
    _configure_logging(app)

    db.init_app(app)
    _tune_sqlite(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    Mail(app)
    celery_init_app(app)
    api.register_session_hooks()
    app.register_blueprint(views.main)
    app.register_blueprint(health.health)
    app.register_blueprint(admin_views.admin)
    preview.register(app)  # development only
    security.register(app)
    cli.register(app)
    return app


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app for `app` from `app.config["CELERY"]`, store it in
    `app.extensions["celery"]` and return it. Every task runs inside the Flask app context, so
    tasks use `db.session` and `current_app.config` as views do."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


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
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
