"""A Celery task that does nothing, run with flasky's settings (celeryconfig.py): what one task
costs the worker before any email work (`celery -A bench.noop_celery worker`).

BENCH_TASK_EVENTS=0 turns the task events off, to price them.
"""

from __future__ import annotations

import os

from celery import Celery

from web import create_app

celery = Celery("noop")
celery.config_from_object(create_app().config["CELERY"] | {"imports": ()})
if os.environ.get("BENCH_TASK_EVENTS") == "0":
    celery.conf.worker_send_task_events = False


@celery.task(name="bench.noop")
def noop(number: int) -> None:
    """Nothing: what is measured is Celery's own work around it."""
