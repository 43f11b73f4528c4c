"""Part 5, the outbox's two hot queries at two table sizes: the worker's claim and the sweeper's
select, each timed as the worker calls it and by PostgreSQL itself (EXPLAIN ANALYZE).

The statements are not copied here: `claims.claim` and `claims.due_for_sweep` run for real,
and the SQL they send is captured from SQLAlchemy, so the figures follow the code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from bench import outbox_fill
from bench.stack import Stack
from bench.stats import median

QUEUED_ROWS = 1000  # the rest of the table is `sent`
LEASE_SECONDS = 60
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class QueryTiming:
    client_ms: float  # median wall time of the call as the worker makes it (commit included)
    execution_ms: float  # median EXPLAIN ANALYZE execution time
    planning_ms: float  # median EXPLAIN ANALYZE planning time
    plan: str  # EXPLAIN (ANALYZE, BUFFERS) text of one run


@dataclass(frozen=True)
class TableTimings:
    rows: int
    claim: QueryTiming
    sweep: QueryTiming


@contextmanager
def _captured(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """Collect (SQL, parameters) of every statement `engine` runs in the block."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _timed_ms(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def _explain(
    db: Any, statement: str, parameters: Any, rows: int | None = None
) -> tuple[float, float, str]:
    """EXPLAIN ANALYZE, each in a transaction that is rolled back (the claim really updates
    its row): (execution ms, planning ms, plan as text). With `rows`, check that the statement
    returned that many rows (a claim that matched nothing would time the wrong work)."""
    with db.engine.connect() as conn:
        plan_json = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
        ).scalar_one()[0]
        conn.rollback()
        if rows is not None and plan_json["Plan"]["Actual Rows"] != rows:
            raise RuntimeError(
                f"EXPLAIN ANALYZE: {plan_json['Plan']['Actual Rows']} rows, expected {rows}"
            )
        plan_text = "\n".join(
            row[0]
            for row in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        )
        conn.rollback()
    return plan_json["Execution Time"], plan_json["Planning Time"], plan_text


def _with_id(parameters: dict[str, Any], old: int, new: int) -> dict[str, Any]:
    """The captured parameters with the row id `old` replaced by `new`, whatever its name."""
    return {
        key: (new if isinstance(value, int) and value == old else value)
        for key, value in parameters.items()
    }


def _fill(stack: Stack, rows: int) -> list[int]:
    """An outbox of `rows` rows, QUEUED_ROWS of them queued; return the queued ids."""
    stack.reset()
    email = outbox_fill.rendered_email(stack.flask_app)
    outbox_fill.insert_rows(stack.database.dsn, email, rows - QUEUED_ROWS, "sent")
    outbox_fill.insert_rows(stack.database.dsn, email, QUEUED_ROWS, "queued")
    with stack.database.connect() as conn:
        return [
            row[0]
            for row in conn.execute("SELECT id FROM emails WHERE status = 'queued' ORDER BY id")
        ]


def measure(stack: Stack, rows: int, repetitions: int) -> TableTimings:
    from web.extensions import db
    from worker import claims

    queued = _fill(stack, rows)
    repetitions = min(repetitions, len(queued) // 2)
    with stack.flask_app.app_context():
        # The claim, as the worker calls it, each time on a row that is still queued.
        with _captured(db.engine) as seen:
            claim_ms = [
                _timed_ms(
                    lambda email_id=email_id: claims.claim(
                        email_id, lease_seconds=LEASE_SECONDS, max_attempts=MAX_ATTEMPTS
                    )
                )
                for email_id in queued[:repetitions]
            ]
        claim_sql, claim_params = next(
            (s, p) for s, p in seen if s.lstrip().upper().startswith("UPDATE")
        )
        claim_runs = [
            _explain(db, claim_sql, _with_id(claim_params, queued[0], email_id), rows=1)
            for email_id in queued[repetitions : 2 * repetitions]
        ]
        # The sweeper's select (read-only: the same rows every time).
        with _captured(db.engine) as seen:
            sweep_ms = [
                _timed_ms(lambda: claims.due_for_sweep(grace_seconds=30, max_attempts=MAX_ATTEMPTS))
                for _ in range(repetitions)
            ]
        sweep_sql, sweep_params = next(
            (s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")
        )
        sweep_runs = [_explain(db, sweep_sql, sweep_params) for _ in range(repetitions)]
        db.session.remove()
    return TableTimings(rows, _timing(claim_ms, claim_runs), _timing(sweep_ms, sweep_runs))


def _timing(client_ms: list[float], runs: list[tuple[float, float, str]]) -> QueryTiming:
    return QueryTiming(
        client_ms=median(client_ms),
        execution_ms=median([r[0] for r in runs]),
        planning_ms=median([r[1] for r in runs]),
        plan=runs[len(runs) // 2][2],
    )
