"""Part 6, one sign-up at low load: from the commit that queues an email to the sink's 250.

A worker runs with its default settings (threads pool, as the compose file starts it) and the
sink answers at once. The runner queues one email at a time with `send_email` and a commit,
with a pause between, as single sign-ups arrive; each email's Message-ID is looked up in the
sink's arrivals log, which holds the monotonic time of its 250 (the clock every process on
the machine shares).
"""

from __future__ import annotations

import time

from sqlalchemy import select

from bench.delivery import threads
from bench.outbox_fill import SUBJECT, TEMPLATE
from bench.report import Table, ms
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from bench.stats import percentile
from devtools.environment import ADMIN
from devtools.waiting import wait_until
from web.extensions import db
from web.models import Email
from web.outbox.api import send_email

CELERY_THREADS = 32  # the compose file's worker
PAUSE = 0.05  # between two emails: one sign-up at a time
WARM_UP = 5  # emails sent first and not counted (connections opened, code paths warmed)


def _queue_one(stack: Stack, number: int) -> tuple[str, float]:
    """Queue one email and commit; return its Message-ID and when the commit returned."""
    with stack.flask_app.app_context():
        email_id = send_email(ADMIN, SUBJECT, TEMPLATE, name=f"probe-{number}")
        message_id = db.session.scalar(select(Email.message_id).where(Email.id == email_id))
        db.session.commit()
        committed = time.monotonic()
        db.session.remove()
    return message_id, committed


def _latencies(stack: Stack, count: int) -> list[float]:
    """Seconds from each commit's return to its 250, for `count` emails after the warm-up."""
    stack.reset()
    worker = stack.start_worker(*threads(CELERY_THREADS))
    try:
        base = stack.sink.accepted
        for number in range(WARM_UP):
            _queue_one(stack, -1 - number)
        stack.sink.wait_for(base + WARM_UP, timeout=60)
        mark = stack.sink.arrivals_mark()
        queued = []
        for number in range(count):
            queued.append(_queue_one(stack, number))
            time.sleep(PAUSE)
        wanted = {message_id for message_id, _ in queued}
        arrived = wait_until(
            lambda: (found := stack.sink.arrivals(mark)).keys() >= wanted and found,
            60,
            f"{count} emails at the sink",
            interval=0.05,
        )
    finally:
        stack.stop_process(worker)
    return [arrived[message_id] - committed for message_id, committed in queued]


def run(stack: Stack, sizes: Sizes, results: Results) -> None:
    stack.sink.set_delay(0.0)
    latencies = _latencies(stack, sizes.commit_probes)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    results.figures["commit.p50"] = p50
    results.figures["commit.p99"] = p99
    table = Table(
        "6. One email at low load: commit → the sink's 250",
        ["emails", "p50", "p95", "p99", "max"],
    )
    table.add(len(latencies), ms(p50), ms(percentile(latencies, 95)), ms(p99), ms(max(latencies)))
    table.notes.append(
        f"Worker `--pool threads --concurrency {CELERY_THREADS}`, default FLASKY_* settings; "
        f"the sink answers at once. One `send_email` + commit every {PAUSE * 1000:.0f} ms "
        f"(after {WARM_UP} not counted); the clock runs from the commit's return (the ids are "
        "published after the COMMIT, inside it) to the 250 the sink sends."
    )
    results.blocks.append(table)
