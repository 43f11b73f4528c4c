"""The claim of a batch is a primary-key lookup on PostgreSQL, whatever the statistics say.

A claim names its ids; its other conditions (due, lease expired) must not steer the planner to
an index of the due rows: after a large bulk INSERT the statistics are stale, and such a plan
walked a million due rows for every claim of 100 (0.6 s each, found by bench/ part 7).
PostgreSQL only: SQLite's planner takes the primary key for `id IN (...)` in any case.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, text

from devtools.postgres import PostgresDatabase
from tests.integration.conftest import migrate
from web import create_app
from web.extensions import db
from worker import claims

FILL = """
INSERT INTO emails (recipients, sender, subject, text_body, html_body, message_id, priority,
                    status, attempts, attachment_count, next_attempt_at, created_at, updated_at)
SELECT '["a@example.com"]', 'f@example.com', 's', 't', 'h', :prefix || n || '@example.com>',
       'bulk', CAST(:status AS text), 0, 0,
       CASE WHEN CAST(:status AS text) = 'sent' THEN NULL ELSE now() AT TIME ZONE 'UTC' END,
       now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
FROM generate_series(1, :count) AS n
"""


@pytest.fixture
def postgres_app() -> Iterator[Flask]:
    with PostgresDatabase() as database:
        migrate(database.url)
        app = create_app("testing", SQLALCHEMY_DATABASE_URI=database.url)
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _fill(count: int, status: str, prefix: str) -> None:
    db.session.execute(text(FILL), {"count": count, "status": status, "prefix": prefix})
    db.session.commit()


def _index_names(plan: dict[str, Any]) -> set[str]:
    names = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        names |= _index_names(child)
    return names


@pytest.mark.parametrize("statistics", ["fresh", "stale after a bulk insert"])
def test_a_claim_looks_up_its_ids_by_primary_key(postgres_app: Flask, statistics: str) -> None:
    with postgres_app.app_context():
        _fill(200_000, "sent", "<sent-")
        _fill(2_000, "queued", "<few-")
        db.session.execute(text("ANALYZE emails"))
        db.session.commit()
        if statistics != "fresh":
            _fill(50_000, "queued", "<many-")
        ids = list(db.session.scalars(text("SELECT id FROM emails WHERE status = 'queued'")))
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            seen.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            claimed = claims.claim_many(ids[-100:], lease_seconds=60, max_attempts=8)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert len(claimed) == 100
        statement, parameters = next((s, p) for s, p in seen if s.startswith("UPDATE"))
        with db.engine.connect() as conn:
            plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            names = _index_names(plan.scalar_one()[0]["Plan"])
            conn.rollback()
    assert names == {"pk_emails"}
