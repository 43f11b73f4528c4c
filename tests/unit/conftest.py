"""Light fixtures for the fast layer: no Redis, no SMTP server, no PostgreSQL, no subprocess.

The `app` here replaces tests/conftest.py's: an in-memory SQLite database holding the models'
schema (one connection shared by every session, or each would see an empty database), a Celery
broker that lives in this process (`memory://`: a commit's publish never reaches Redis) and the
rate limits counted in memory. Nothing runs tasks: delivery is proved by the real-service tests
in tests/*.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.pool import StaticPool

from devtools.environment import ADMIN
from web import create_app
from web.extensions import db

HERE = Path(__file__).resolve().parent

UNIT_SETTINGS: dict[str, object] = {
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "SQLALCHEMY_ENGINE_OPTIONS": {
        "poolclass": StaticPool,
        "connect_args": {"check_same_thread": False},
    },
    "CELERY": {"broker_url": "memory://"},
    "RATELIMIT_STORAGE_URI": "memory://",
    "FLASKY_ADMIN": ADMIN,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/unit is marked `unit`: `pytest -m unit` runs the fast layer,
    `pytest -m "not unit"` the real-service one."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.unit)


def make_app(config_name: str = "testing", **overrides: object) -> Flask:
    """An app on a fresh in-memory database with the schema created."""
    app = create_app(config_name, **{**UNIT_SETTINGS, **overrides})
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture
def app() -> Iterator[Flask]:
    app = make_app()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_context(app: Flask) -> Iterator[Flask]:
    """Inside the app context, for tests that call the outbox functions directly."""
    with app.app_context():
        yield app
        db.session.rollback()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
