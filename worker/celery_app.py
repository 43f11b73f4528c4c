"""The glue between Flask and Celery (the official "Background Tasks with Celery" pattern).

`celery_init_app()` is the one function that binds a Celery app to a Flask app: settings from
celeryconfig.py, and a task class that runs every task inside the Flask app context, so tasks
use `db.session` and `current_app.config` as views do.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask, overrides: dict[str, Any] | None = None) -> Celery:
    """Create the Celery app for `app`, store it in `app.extensions["celery"]`, return it.

    `overrides` (Flask config key `CELERY`) lets tests point one app at their own Redis
    without touching the process environment.
    """

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask, include=["worker.tasks"])
    celery_app.config_from_object("celeryconfig")
    if overrides:
        celery_app.conf.update(overrides)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
