"""Part 5c, priorities: one email queued behind a backlog of bulk emails, as "bulk" (the same
queue: the baseline) and as "high" (its own queue), with the worker busy on the backlog."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from bench import outbox_fill
from bench.delivery import threads
from bench.report import Table
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from devtools.environment import ADMIN
from devtools.waiting import wait_until
from web.extensions import db
from web.outbox.api import publish, send_email
from web.outbox.priority import queue_for

THREADS = 32  # the compose file's default worker
WARM_UP = 200  # bulk emails delivered before the probe is queued: the worker is busy


@dataclass(frozen=True)
class Probe:
    seconds: float  # from queueing the probe (created_at) to its 250 (sent_at)
    bulk_before: int  # bulk emails delivered before it
    bulk_waiting: int  # bulk messages still on their queue when it was delivered


def _probe(stack: Stack, backlog: int, priority: str) -> Probe:
    stack.reset()
    outbox_fill.insert_rows(
        stack.database.dsn, outbox_fill.rendered_email(stack.flask_app), backlog, "queued"
    )
    with stack.database.connect() as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM emails ORDER BY id")]
    with stack.flask_app.app_context():
        if publish((email_id, "bulk") for email_id in ids):
            raise RuntimeError("the backlog could not be published to Redis")
    base = stack.sink.start_batch()
    worker = stack.start_worker(*threads(THREADS))
    try:
        stack.sink.wait_for(base + WARM_UP, timeout=60)
        with stack.flask_app.app_context():
            probe_id = send_email(ADMIN, "Reset", "mail/test_email", priority=priority)
            db.session.commit()
            db.session.remove()
        created_at, sent_at = wait_until(
            lambda: _sent(stack, probe_id), 120 + backlog / 20, f"the {priority} email", 0.005
        )
        waiting = stack.redis.client().llen(queue_for("bulk"))
    finally:
        stack.stop_process(worker)
    with stack.database.connect() as conn:
        (before,) = conn.execute(
            "SELECT count(*) FROM emails WHERE sent_at < %s AND id <> %s", (sent_at, probe_id)
        ).fetchone()
    return Probe((sent_at - created_at).total_seconds(), before, waiting)


def _sent(stack: Stack, email_id: int) -> tuple[datetime, datetime] | None:
    with stack.database.connect() as conn:
        row = conn.execute(
            "SELECT created_at, sent_at FROM emails WHERE id = %s AND status = 'sent'", (email_id,)
        ).fetchone()
    return None if row is None else (row[0], row[1])


def run(stack: Stack, sizes: Sizes, results: Results) -> None:
    backlog = sizes.priority_backlog
    stack.sink.set_delay(0.0)
    started = time.monotonic()
    bulk = _probe(stack, backlog, "bulk")
    high = _probe(stack, backlog, "high")
    results.figures["priority.high_seconds"] = high.seconds
    table = Table(
        f"5c. Priority: one email queued behind {backlog} bulk emails, worker "
        f"`--pool threads --concurrency {THREADS}` busy with them",
        [
            "the email's priority",
            "queued → 250",
            "bulk emails delivered before it",
            "bulk messages (up to FLASKY_BATCH_SIZE ids each) still on the queue then",
            "bulk ÷ this",
        ],
    )
    for name, probe in (("bulk (same queue as the backlog)", bulk), ("high", high)):
        table.add(
            name,
            f"{probe.seconds:.2f} s",
            probe.bulk_before,
            probe.bulk_waiting,
            f"{bulk.seconds / probe.seconds:.0f}×",
        )
    table.notes.append(
        f"The backlog is inserted with SQL and its {backlog} ids published on flasky.bulk; "
        f"the worker starts, and once it has delivered {WARM_UP} the email is queued with "
        "`send_email(..., priority=...)` and committed. Times are the row's created_at and "
        "sent_at. The sink answers at once, so the bulk baseline is the time to drain the "
        f"backlog. One measurement each (this part took {time.monotonic() - started:.0f} s)."
    )
    results.blocks.append(table)
