"""flasky's web app, built by `create_app()`: `flask --app web`, `gunicorn "web:create_app()"`.

`celery_init_app()` binds the app's Celery app to it, as in Flask's own Celery example; the
worker's entry point (worker/__init__.py) takes the Celery app from here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, NoReturn

from celery import Celery, Task
from flask import Flask
from flask_mail import Mail
from sqlalchemy import event

import celeryconfig
from web import cli, health, metrics, schema, security, views
from web.admin import views as admin_views
from web.caught_mail import views as caught_mail
from web.config import (
    STARTUP_ERROR_EXIT_STATUS,
    ConfigError,
    check_wait_chain,
    exit_on_startup_error,
    load_config,
)
from web.extensions import csrf, db, migrate
from web.limiter import limiter
from web.outbox import api, preview

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
# templates/, static/ and migrations/: at the top of the source tree (and of an editable
# install, which runs from it), inside the package once installed from the wheel
# (pyproject.toml's package-dir puts them there).
INSTALLED = (PACKAGE_DIR / "templates").is_dir()
RESOURCES = PACKAGE_DIR if INSTALLED else PROJECT_ROOT


def create_app(config_name: str | None = None, **overrides: Any) -> Flask:
    """Build the app for `config_name` (default: `FLASKY_CONFIG`, else production).

    `overrides` replace loaded settings (tests use them); a `CELERY` override is merged into
    the Celery settings built from the rest. An invalid configuration stops start-up with one
    line naming the variable.
    """
    # Installed, the default instance folder is Flask's own (<prefix>/var/web-instance), never
    # a folder inside site-packages.
    default_instance = None if INSTALLED else str(PROJECT_ROOT / "instance")
    instance_path = os.environ.get("FLASKY_INSTANCE_PATH") or default_instance
    app = Flask(
        __name__,
        template_folder=str(RESOURCES / "templates"),
        static_folder=str(RESOURCES / "static"),
        instance_path=os.path.abspath(instance_path) if instance_path else None,
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
    migrate.init_app(app, db, directory=str(RESOURCES / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    Mail(app)
    celery_init_app(app)
    api.register_session_hooks()
    app.register_blueprint(views.main)
    app.register_blueprint(health.health)
    app.register_blueprint(admin_views.admin)
    app.register_blueprint(metrics.metrics)
    preview.register(app)  # development only
    caught_mail.register(app)  # development only
    security.register(app)
    schema.register(app)  # 503 and one log line while unmigrated
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


CONFIG_ERROR_EXIT_STATUS = STARTUP_ERROR_EXIT_STATUS  # 3: see web/config.py


def _exit_on_bad_config(exc: ConfigError) -> NoReturn:
    exit_on_startup_error("configuration error", exc)


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
