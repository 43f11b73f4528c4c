"""Two layers, as in Celery's own suite: `tests/unit` (fast: no Redis, no SMTP server, no
PostgreSQL, no subprocess; `python3 dev.py test --fast`) under `tests/integration` (the real
services: Redis, Celery workers, an SMTP server, SQLite and PostgreSQL, Chromium)."""

import os

# Importing any worker module builds the worker's app from the environment (worker/__init__.py):
# in the test process that is the testing configuration, unless the caller chose another.
os.environ.setdefault("FLASKY_CONFIG", "testing")
