"""web/schema.py: an unmigrated database is one line naming `flask --app web db upgrade`.

The real commands (a worker waiting for the migrations, gunicorn, `flask outbox`) are run in
tests/integration/test_config.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from tests.unit.conftest import UNIT_SETTINGS, make_app
from web import create_app, schema
from web.extensions import db
from web.models import Email
from web.schema import exit_if_unmigrated, schema_problem, wait_for_schema

NO_TABLES = "the database has no tables: run flask --app web db upgrade"


@pytest.fixture
def empty_app() -> Iterator[Flask]:
    """An app on an in-memory database without a single table."""
    app = create_app("testing", **UNIT_SETTINGS)
    yield app
    with app.app_context():
        db.engine.dispose()


def _count_emails() -> str:
    return str(db.session.scalar(select(func.count(Email.id))))


def _set_revision(app: Flask, revision: str) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})


def test_a_database_without_tables_names_the_command(empty_app: Flask) -> None:
    assert schema_problem(empty_app) == NO_TABLES


def test_tables_made_by_create_all_are_taken_as_they_are(app: Flask) -> None:
    assert schema_problem(app) is None  # the unit tests' own databases


def test_the_head_revision_is_migrated(app: Flask) -> None:
    _set_revision(app, "0006")
    assert schema_problem(app) is None


def test_an_older_revision_names_both_and_the_command(app: Flask) -> None:
    _set_revision(app, "0003")
    assert schema_problem(app) == (
        "the database is at migration 0003 and this flasky needs 0006: "
        "run flask --app web db upgrade"
    )


def test_a_revision_of_a_newer_flasky_is_taken(app: Flask) -> None:
    _set_revision(app, "9999")  # a rollback to this code: refusing would stop it
    assert schema_problem(app) is None


def test_a_command_exits_with_one_line_and_status_3(
    empty_app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        exit_if_unmigrated(empty_app)
    assert exited.value.code == 3
    assert capsys.readouterr().err == f"flasky: database error: {NO_TABLES}\n"


def test_a_worker_without_a_wait_exits_with_one_line(
    empty_app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    empty_app.config["FLASKY_MIGRATION_WAIT"] = 0
    with pytest.raises(SystemExit) as exited:
        wait_for_schema(empty_app)
    assert exited.value.code == 3
    assert capsys.readouterr().err == f"flasky: database error: {NO_TABLES}\n"


def test_a_worker_waits_for_the_migrations_then_starts(
    empty_app: Flask, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_app.config["FLASKY_MIGRATION_WAIT"] = 30
    naps: list[float] = []

    def migrate_while_it_waits(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:  # someone ran `flask db upgrade` meanwhile
            with empty_app.app_context():
                db.create_all()

    monkeypatch.setattr(schema.time, "sleep", migrate_while_it_waits)
    wait_for_schema(empty_app)  # returns: no SystemExit
    assert len(naps) == 3
    assert capsys.readouterr().err == (
        f"flasky: database error: {NO_TABLES} (the worker waits 30 s for it)\n"
    )


def test_a_worker_that_waited_in_vain_has_said_it_once(
    empty_app: Flask, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "_WAIT_INTERVAL_SECONDS", 0.01)
    empty_app.config["FLASKY_MIGRATION_WAIT"] = 0.05
    with pytest.raises(SystemExit) as exited:
        wait_for_schema(empty_app)
    assert exited.value.code == 3
    assert capsys.readouterr().err == (
        f"flasky: database error: {NO_TABLES} (the worker waits 0.05 s for it)\n"
    )


def test_the_web_answers_503_and_logs_one_line_once(
    empty_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    empty_app.add_url_rule("/count", "count", _count_emails)
    client = empty_app.test_client()
    with caplog.at_level(logging.ERROR, logger="web.schema"):
        first, second = client.get("/count"), client.get("/count")
    assert first.status_code == second.status_code == 503
    assert first.headers["Retry-After"] == "30"
    assert "not migrated" in first.get_data(as_text=True)
    assert [record.getMessage() for record in caplog.records] == [
        f"flasky: database error: {NO_TABLES}"
    ]


def test_the_web_serves_once_the_database_is_migrated(empty_app: Flask) -> None:
    empty_app.add_url_rule("/count", "count", _count_emails)
    client = empty_app.test_client()
    assert client.get("/count").status_code == 503
    with empty_app.app_context():
        db.create_all()
    reply = client.get("/count")
    assert reply.status_code == 200 and reply.get_data(as_text=True) == "0"


def test_other_database_errors_are_left_to_flask() -> None:
    app = make_app()
    app.add_url_rule("/bad", "bad", lambda: str(db.session.execute(text("SELEC 1"))))
    with pytest.raises(Exception, match="syntax error"):
        app.test_client().get("/bad")  # testing: Flask re-raises what it would answer 500 to


def test_a_worker_keeps_no_connection_of_the_check_for_its_forked_children(
    tmp_path: Path,
) -> None:
    """The prefork pool forks after the check: children must not share its connection."""
    settings = {**UNIT_SETTINGS, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'f.sqlite'}"}
    del settings["SQLALCHEMY_ENGINE_OPTIONS"]  # a pool that keeps connections, as in production
    app = create_app("testing", **settings)
    with app.app_context():
        db.create_all()
        wait_for_schema(app)
        assert db.engine.pool.checkedin() == 0
