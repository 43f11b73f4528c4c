"""Is the database migrated? One line naming `flask --app web db upgrade` when it is not.

create_app cannot ask: `flask db upgrade` builds the same app to migrate an empty database,
and the unit tests make their tables with db.create_all(). So each process asks where it first
needs the schema, at a cost paid once or only on failure:

- the worker, before it consumes (`wait_for_schema`, from worker/__init__.py): compose starts
  it beside the web, whose command migrates first, so it waits up to FLASKY_MIGRATION_WAIT
  seconds for the migrations before it exits with status 3;
- the web, when a query fails on a missing table or column (`register`): that request and the
  next ones answer 503 and the log says what to run; a working request pays nothing;
- the commands that read the outbox (`exit_if_unmigrated`, web/cli.py and web/outbox/cli.py).

Migrated means: alembic_version holds the head of the app's migrations. Two other states are
taken as they are: flasky's tables without alembic_version (db.create_all(), the unit tests),
and a revision these migrations do not know (a newer flasky's, during a rollback: refusing
would stop the older code, which the migrations so far have always left able to run).
"""

from __future__ import annotations

import functools
import logging
import sys
import time

from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask.typing import ResponseReturnValue
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError, SQLAlchemyError

from web.config import STARTUP_ERROR_EXIT_STATUS, exit_on_startup_error
from web.extensions import db
from web.models import Email

log = logging.getLogger(__name__)

UPGRADE_COMMAND = "flask --app web db upgrade"
_VERSION_TABLE = "alembic_version"  # Alembic's, as Flask-Migrate configures it
_WAIT_INTERVAL_SECONDS = 0.5
_WARNED_KEY = "flasky_schema_warned"

# A query on a missing table or column: PostgreSQL's SQLSTATEs (undefined_table,
# undefined_column) and SQLite's messages.
_MISSING_SQLSTATES = {"42P01", "42703"}
_MISSING_SQLITE = ("no such table", "no such column", "has no column named")


def schema_problem(app: Flask) -> str | None:
    """What is wrong with the database's schema, ending with the command that fixes it; None
    when it is migrated (or in one of the states the module's docstring accepts).

    Raises SQLAlchemyError when the database cannot be asked.
    """
    with app.app_context(), db.engine.connect() as connection:
        tables = inspect(connection)
        if not tables.has_table(_VERSION_TABLE):
            if tables.has_table(Email.__tablename__):
                return None  # db.create_all()
            return f"the database has no tables: run {UPGRADE_COMMAND}"
        rows = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}"))  # noqa: S608
        current = frozenset(rows.scalars())
    if not current:  # downgraded to the base: no tables either
        return f"the database has no tables: run {UPGRADE_COMMAND}"
    heads, known = _revisions(app.extensions["migrate"].directory)
    if current == heads or not current <= known:
        return None
    return (
        f"the database is at migration {', '.join(sorted(current))} and this flasky needs "
        f"{', '.join(sorted(heads))}: run {UPGRADE_COMMAND}"
    )


@functools.cache
def _revisions(directory: str) -> tuple[frozenset[str], frozenset[str]]:
    """The heads and every revision of the migrations in `directory`, read once per process."""
    script = ScriptDirectory(directory)
    known = frozenset(revision.revision for revision in script.walk_revisions())
    return frozenset(script.get_heads()), known


def exit_if_unmigrated(app: Flask) -> None:
    """For a command that reads or writes the outbox: one line and exit status 3 when the
    database is not migrated. An unreachable database is left to the command's own query."""
    try:
        problem = schema_problem(app)
    except SQLAlchemyError:
        return
    if problem is not None:
        exit_on_startup_error("database error", problem)


def wait_for_schema(app: Flask) -> None:
    """Return once the database is migrated, waiting up to FLASKY_MIGRATION_WAIT seconds; then
    exit with status 3. The one line is printed when the wait starts, not when it ends: whoever
    started the worker by hand learns at once what to run, and the worker goes on by itself
    when it has been run.

    An unreachable database is not waited for: the worker starts, as it always did, and its
    tasks retry until the database answers.
    """
    try:
        _wait_for_schema(app)
    finally:
        # The prefork pool forks after this: a pooled connection of the check, inherited by
        # every child, would be one socket written by several processes.
        with app.app_context():
            db.engine.dispose()


def _wait_for_schema(app: Flask) -> None:
    timeout = app.config["FLASKY_MIGRATION_WAIT"]
    deadline = time.monotonic() + timeout
    waiting = False
    while True:
        try:
            problem = schema_problem(app)
        except SQLAlchemyError as exc:
            log.warning("could not check the database's migrations: %s", type(exc).__name__)
            return
        if problem is None:
            if waiting:
                log.info("the database is migrated: starting")
            return
        if time.monotonic() >= deadline:
            if not waiting:
                exit_on_startup_error("database error", problem)
            raise SystemExit(STARTUP_ERROR_EXIT_STATUS)  # the line was printed when it began
        if not waiting:
            waiting = True
            line = f"flasky: database error: {problem} (the worker waits {timeout:g} s for it)"
            print(line, file=sys.stderr, flush=True)
        time.sleep(_WAIT_INTERVAL_SECONDS)


def register(app: Flask) -> None:
    """The web's check: on a query that fails on a missing table or column, answer 503 and log
    one line, once per process, when the migrations are behind. Any other database error goes
    on to Flask's usual 500."""
    app.register_error_handler(DatabaseError, _on_database_error)


def _on_database_error(error: DatabaseError) -> ResponseReturnValue:
    if not _is_missing_schema(error):
        raise error
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        problem = schema_problem(app)
    except SQLAlchemyError:
        problem = None
    if problem is None:
        raise error
    if not app.extensions.get(_WARNED_KEY):
        app.extensions[_WARNED_KEY] = True
        log.error("flasky: database error: %s", problem)
    body = "flasky's database is not migrated yet: the server's log says what to run.\n"
    return body, 503, {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "30"}


def _is_missing_schema(error: DatabaseError) -> bool:
    original = error.orig
    if getattr(original, "sqlstate", None) in _MISSING_SQLSTATES:
        return True
    return any(words in str(original) for words in _MISSING_SQLITE)
