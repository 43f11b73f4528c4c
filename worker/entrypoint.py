"""Builds the Flask app from the environment and exposes its Celery app with the tasks."""

from web import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
