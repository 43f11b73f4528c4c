"""Part 5b, the outbox's two hot statements at two table sizes: the worker's claim of a batch
(`claims.claim_many`, FLASKY_BATCH_SIZE ids) and the bulk top-up's select (`claims.due_for_sweep`,
priority "bulk"), each timed as the worker calls it and by PostgreSQL itself (EXPLAIN ANALYZE);
and what an operator's page reads at the same sizes (the dashboard's list, a search, the
counts, /metrics), timed as the page calls it.

The statements are not copied here: the functions run for real, and the SQL they send is
captured from SQLAlchemy, so the figures follow the code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from bench import outbox_fill
from bench.report import Details, Table
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from bench.stats import median

QUEUED_ROWS = 2000  # bulk, due; the rest of the table is `sent`
LEASE_SECONDS = 60
MAX_ATTEMPTS = 8
READ_REPETITIONS = 15  # each read scans the table at 1M rows: tenths of a second
NO_MATCH = "nobody@nowhere.example"  # the search's worst case: every row read, none kept


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
    reads: dict[str, float]  # an operator's read -> median ms, from Python


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


def _with_ids(parameters: dict[str, Any], old: list[int], new: list[int]) -> dict[str, Any]:
    """The captured parameters with the row ids `old` replaced by `new` (position by
    position), whatever their names."""
    replace = dict(zip(old, new, strict=True))
    return {
        key: (replace.get(value, value) if isinstance(value, int) else value)
        for key, value in parameters.items()
    }


def _fill(stack: Stack, rows: int) -> list[int]:
    """An outbox of `rows` rows, QUEUED_ROWS of them queued bulk emails; return their ids."""
    stack.reset()
    email = outbox_fill.rendered_email(stack.flask_app)
    outbox_fill.insert_rows(stack.database.dsn, email, rows - QUEUED_ROWS, "sent")
    outbox_fill.insert_rows(stack.database.dsn, email, QUEUED_ROWS, "queued", priority="bulk")
    with stack.database.connect() as conn:
        return [
            row[0]
            for row in conn.execute("SELECT id FROM emails WHERE status = 'queued' ORDER BY id")
        ]


def measure(stack: Stack, rows: int, repetitions: int) -> TableTimings:
    from web.extensions import db
    from worker import claims

    queued = _fill(stack, rows)
    size = stack.flask_app.config["FLASKY_BATCH_SIZE"]
    batches = [queued[start : start + size] for start in range(0, len(queued), size)]
    timed, explained = batches[: len(batches) // 2], batches[len(batches) // 2 :]
    with stack.flask_app.app_context():
        # The bulk top-up's select (read-only: the same rows every time), first: each claim
        # that EXPLAIN ANALYZE rolls back leaves dead index entries (until a vacuum) that the
        # select would step over.
        with _captured(db.engine) as seen:
            sweep_ms = [
                _timed_ms(
                    lambda: claims.due_for_sweep(
                        grace_seconds=30, max_attempts=MAX_ATTEMPTS, priority="bulk"
                    )
                )
                for _ in range(repetitions)
            ]
        sweep_sql, sweep_params = next(
            (s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")
        )
        sweep_runs = [_explain(db, sweep_sql, sweep_params) for _ in range(repetitions)]
        # The claim of a batch, as the worker calls it, each time on rows still queued.
        with _captured(db.engine) as seen:
            claim_ms = [
                _timed_ms(
                    lambda batch=batch: claims.claim_many(
                        batch, lease_seconds=LEASE_SECONDS, max_attempts=MAX_ATTEMPTS
                    )
                )
                for batch in timed
            ]
        claim_sql, claim_params = next(
            (s, p) for s, p in seen if s.lstrip().upper().startswith("UPDATE")
        )
        # EXPLAIN ANALYZE rolls its claim back: the other half of the batches, in turn.
        claim_runs = [
            _explain(
                db,
                claim_sql,
                _with_ids(claim_params, timed[0], explained[number % len(explained)]),
                rows=size,
            )
            for number in range(repetitions)
        ]
        reads = _operator_reads(db)
        db.session.remove()
    return TableTimings(rows, _timing(claim_ms, claim_runs), _timing(sweep_ms, sweep_runs), reads)


def _operator_reads(db: Any) -> dict[str, float]:
    """Median ms of each read an operator's page makes, as the page calls it (its read
    transaction ended after each)."""
    from web import metrics
    from web.admin.views import PER_PAGE
    from web.outbox import queries as outbox
    from web.outbox.search import EmailFilter

    reads: dict[str, Callable[[], object]] = {
        f"dashboard list (page 1 of {PER_PAGE}, with its count)": lambda: outbox.email_page(
            1, PER_PAGE
        ),
        "dashboard search matching nothing": lambda: outbox.email_page(
            1, PER_PAGE, EmailFilter(query=NO_MATCH)
        ),
        "counts per status (dashboard, `outbox stats`)": outbox.stats,
        "/metrics (every family)": metrics.collect,
    }
    timings = {}
    for name, read in reads.items():
        timings[name] = median(
            [
                _timed_ms(lambda read=read: (read(), db.session.rollback()))
                for _ in range(READ_REPETITIONS)
            ]
        )
    return timings


def _timing(client_ms: list[float], runs: list[tuple[float, float, str]]) -> QueryTiming:
    return QueryTiming(
        client_ms=median(client_ms),
        execution_ms=median([r[0] for r in runs]),
        planning_ms=median([r[1] for r in runs]),
        plan=runs[len(runs) // 2][2],
    )


def run(stack: Stack, sizes: Sizes, results: Results) -> None:
    """Measure at both table sizes and report."""
    small, large = (
        measure(stack, rows, sizes.query_repetitions) for rows in sizes.query_table_sizes
    )
    results.figures["queries.small_rows"] = small.rows
    results.figures["queries.large_rows"] = large.rows
    table = Table(
        "5b. Outbox statements: the claim of a batch (`claims.claim_many`) and the bulk "
        "top-up's select (`claims.due_for_sweep`, bulk)",
        ["query", "measured as", f"{small.rows:,} rows", f"{large.rows:,} rows", "ratio"],
    )
    for name, pick in (("claim", lambda t: t.claim), ("sweep", lambda t: t.sweep)):
        a, b = pick(small), pick(large)
        results.figures[f"queries.{name}.execution_ratio"] = b.execution_ms / a.execution_ms
        results.figures[f"queries.{name}.client_ratio"] = b.client_ms / a.client_ms
        table.add(
            name,
            "call from Python, commit included",
            f"{a.client_ms:.2f} ms",
            f"{b.client_ms:.2f} ms",
            f"{b.client_ms / a.client_ms:.2f}×",
        )
        table.add(
            name,
            "PostgreSQL execution (EXPLAIN ANALYZE)",
            f"{a.execution_ms:.3f} ms",
            f"{b.execution_ms:.3f} ms",
            f"{b.execution_ms / a.execution_ms:.2f}×",
        )
        table.add(
            name,
            "PostgreSQL planning",
            f"{a.planning_ms:.3f} ms",
            f"{b.planning_ms:.3f} ms",
            f"{b.planning_ms / a.planning_ms:.2f}×",
        )
    batch = stack.flask_app.config["FLASKY_BATCH_SIZE"]
    table.notes.append(
        f"{QUEUED_ROWS} bulk rows queued, the rest sent (generate_series, "
        f"then VACUUM ANALYZE). Each claim takes {batch} ids (FLASKY_BATCH_SIZE): from Python, "
        f"the median of {QUEUED_ROWS // batch // 2} claims, each of a batch still queued; "
        f"EXPLAIN ANALYZE: the median of {sizes.query_repetitions} runs, each in a rolled-back "
        "transaction, on the other batches in turn. The select asks for 500 rows (the top-up's "
        f"batch), median of {sizes.query_repetitions} calls and as many EXPLAIN ANALYZE runs."
    )
    results.blocks.append(table)

    reads = Table(
        "5d. What an operator's page reads, at the same two table sizes",
        ["read", f"{small.rows:,} rows", f"{large.rows:,} rows", "ratio"],
    )
    for name, small_ms in small.reads.items():
        large_ms = large.reads[name]
        reads.add(name, f"{small_ms:.1f} ms", f"{large_ms:.1f} ms", f"{large_ms / small_ms:.1f}×")
    reads.notes.append(
        f"The same tables as 5b, after its claims; from Python, the median of {READ_REPETITIONS} "
        "calls of the function the page calls (web/outbox/queries.py, web/metrics.py), each "
        f"followed by a rollback. The search looks for {NO_MATCH!r}: no index serves a "
        "substring, so every row the filter leaves is read (web/outbox/search.py)."
    )
    for timings in (small, large):
        results.blocks.append(Details(f"EXPLAIN: claim, {timings.rows:,} rows", timings.claim.plan))
        results.blocks.append(
            Details(f"EXPLAIN: bulk top-up select, {timings.rows:,} rows", timings.sweep.plan)
        )
    results.blocks.append(reads)  # after 5b's plans, which belong to its table
