"""The worker's entry point: `celery -A worker worker|beat|flower` finds `worker.celery`."""

from celery.signals import celeryd_init

from web import create_app
from web.schema import wait_for_schema

flask_app = create_app()  # not `app`: Celery's -A looks for `worker.app` before `worker.celery`
celery = flask_app.extensions["celery"]


@celeryd_init.connect
def _wait_for_the_migrations(instance: object = None, **_: object) -> None:
    """Sent by `celery worker` alone (not beat, Flower or `inspect`, which never query the
    database), before it consumes anything; see web/schema.py."""
    if getattr(instance, "app", None) is celery:
        wait_for_schema(flask_app)
