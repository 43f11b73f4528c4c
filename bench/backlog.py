"""Part 4, an outage's backlog: N due rows in the outbox, nothing in Redis; worker and beat
start, and only the sweeper can get the emails moving again."""

from __future__ import annotations

import re
import time
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from bench import outbox_fill
from bench.delivery import prefork
from bench.report import Table
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from bench.stats import median
from devtools.waiting import wait_until

SWEEP_INTERVAL = 1.0
SWEEP_GRACE = 2.0
CURVE_POINTS = 200  # points of the drain's curve (the chart), evenly spaced in time
_REPUBLISHED = re.compile(r"sweeper published (\d+) emails")


@dataclass(frozen=True)
class Drain:
    seconds: float  # from starting worker and beat to the last email's 250
    sweeps_run: int
    sweeps_expired: int  # sweep messages that waited past their expiry behind other tasks
    republished: int  # ids published by the sweeper, duplicates included
    skipped: int  # send_email tasks that found their row already handled
    curve: list[tuple[float, float]]  # (seconds since the start, emails delivered so far)


def _drain(stack: Stack, count: int) -> Drain:
    stack.reset()
    email = outbox_fill.rendered_email(stack.flask_app)
    outbox_fill.insert_rows(stack.database.dsn, email, count, "queued")
    env = {"FLASKY_SWEEP_INTERVAL": str(SWEEP_INTERVAL), "FLASKY_SWEEP_GRACE": str(SWEEP_GRACE)}
    base = stack.sink.start_batch()
    mark = stack.sink.arrivals_mark()
    start = time.monotonic()
    beat = stack.start_beat(env)
    worker = stack.start_worker(*prefork(2), extra_env=env)
    try:
        stack.sink.wait_for(base + count, timeout=120 + count / 20)
        seconds = stack.sink.last_accepted_at - start
        wait_until(lambda: _unsent(stack) == 0, 60, "every backlog row to be sent")
    finally:
        stack.stop_process(beat)
        stack.stop_process(worker)
    log = worker.output()
    return Drain(
        seconds=seconds,
        sweeps_run=log.count("Task flasky.sweep_outbox[")
        - log.count("Discarding revoked task: flasky.sweep_outbox"),
        sweeps_expired=log.count("Discarding revoked task: flasky.sweep_outbox"),
        republished=sum(int(n) for n in _REPUBLISHED.findall(log)),
        skipped=log.count(" not claimed by task "),
        curve=_curve(stack.sink.arrivals(mark).values(), start, seconds),
    )


def _curve(arrivals: Iterable[float], start: float, seconds: float) -> list[tuple[float, float]]:
    """Emails delivered so far (first 250 of each Message-ID, from the sink's arrivals log)
    at CURVE_POINTS even steps from `start` to the last 250, `seconds` after it."""
    times = sorted(at - start for at in arrivals)
    steps = [seconds * step / CURVE_POINTS for step in range(CURVE_POINTS)]
    return [(t, float(bisect_right(times, t))) for t in steps] + [(seconds, float(len(times)))]


def _unsent(stack: Stack) -> int:
    with stack.database.connect() as conn:
        row = conn.execute("SELECT count(*) FROM emails WHERE status <> 'sent'").fetchone()
    return int(row[0]) if row else -1


def run(stack: Stack, sizes: Sizes, results: Results) -> None:
    count = sizes.backlog_emails
    stack.sink.set_delay(0.0)
    drains = [_drain(stack, count) for _ in range(sizes.backlog_repeats)]
    seconds = median([d.seconds for d in drains])
    results.figures["backlog.seconds"] = seconds
    results.figures["backlog.emails"] = count
    for number, drain in enumerate(drains, 1):
        results.series[f"backlog.drain.{number}"] = drain.curve
    table = Table(
        f"4b. An outage's backlog: {count} due rows, Redis empty; worker (2 prefork) + beat",
        [
            "drain time",
            "emails/s",
            "sweeps run",
            "sweeps expired unrun",
            "ids published by the sweeper",
            "tasks that found the row done",
        ],
        chart="drain",
    )
    table.add(
        f"{seconds:.1f} s",
        f"{count / seconds:.0f}",
        median([d.sweeps_run for d in drains]),
        median([d.sweeps_expired for d in drains]),
        median([d.republished for d in drains]),
        median([d.skipped for d in drains]),
    )
    table.notes.append(
        f"FLASKY_SWEEP_INTERVAL={SWEEP_INTERVAL:g}, FLASKY_SWEEP_GRACE={SWEEP_GRACE:g}; the rows "
        "were inserted an hour before, with one INSERT of generate_series. Drain time runs "
        "from starting worker and beat (start-up included) to the last 250. One sweep at a "
        "time (a Redis lock) tops each queue up to FLASKY_SWEEP_QUEUE_TARGET (5000) messages, "
        "in batches of 500, and marks what it published so that later sweeps leave it alone "
        "while its queue holds messages. "
        f"Medians of {sizes.backlog_repeats} drain(s) (`--repeats N` for more)."
    )
    results.blocks.append(table)
