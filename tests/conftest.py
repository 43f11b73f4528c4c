"""Two layers, as in Celery's own suite: `tests/unit` (fast: no Redis, no SMTP server, no
PostgreSQL, no subprocess; `python3 dev.py test --fast`) under `tests/integration` (the real
services: Redis, Celery workers, an SMTP server, SQLite and PostgreSQL, Chromium)."""

import os

import pytest

# Importing any worker module builds the worker's app from the environment (worker/__init__.py):
# in the test process that is the testing configuration, unless the caller chose another.
os.environ.setdefault("FLASKY_CONFIG", "testing")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fresh-clone",
        action="store_true",
        help="also run the fresh-clone proof (tests marked fresh_clone, minutes; .ci/run does)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the fresh-clone proof unless --fresh-clone asks for it: it builds a venv of its
    own and runs both README commands, minutes that the suite's budget has no room for. The
    summary counts it as deselected."""
    if config.getoption("--fresh-clone"):
        return
    proof = [item for item in items if item.get_closest_marker("fresh_clone")]
    if proof:
        config.hook.pytest_deselected(items=proof)
        items[:] = [item for item in items if item not in proof]


def pytest_report_header() -> str:
    from devtools.postgres import POSTGRES_ADMIN_URL

    return f"PostgreSQL for the tests: {POSTGRES_ADMIN_URL}"
