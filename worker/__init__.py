"""The Celery worker's entry point: `celery -A worker worker|beat|flower`.

Celery looks for `worker.celery`. Building it means building the Flask app, so it happens on
first access (PEP 562 `__getattr__`) rather than on import: the web process imports the glue in
`worker.celery_app` without creating a second Flask app.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        from worker.entrypoint import celery

        return celery
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
