"""The worker's entry point: `celery -A worker worker|beat|flower` finds `worker.celery`."""

from web import create_app

celery = create_app().extensions["celery"]
