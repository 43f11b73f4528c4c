"""Part 7, a newsletter: N bulk emails queued with `send_bulk` while beat runs, then a worker
started and the first M of them drained and checked, Redis memory sampled every second
throughout.

The bulk backlog waits in the database and is fed to Redis as the workers take it
(`worker.tasks.sweep_outbox`, `_feed`), so Redis should hold what is in flight, not the backlog:
while queueing, every commit asks beat's sweeper for a sweep and nothing consumes what it
publishes, so a feed that did not bound itself would show here. The worker starts when the
queueing ends: on 2 cores, a worker draining at full speed would take half the CPU the queueing
is timed with (docs/benchmarks.md gives both figures).
After the drain, every row marked `sent` must have its Message-ID in the sink's arrivals log
(nothing lost) and no Message-ID may have reached the sink twice (nothing duplicated).
Before that, with no worker, `send_bulk` is compared with a `send_email` loop
(bench/bulk_queue.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType

import redis

from bench import bulk_queue, delivery
from bench.delivery import prefork
from bench.report import Table
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack

WORKER_PROCESSES = 2
COMPARE_COMMIT_EVERY = 1000
SAMPLE_INTERVAL = 1.0
MB = 1024 * 1024


class RedisMemory:
    """A thread that reads Redis's `used_memory` every SAMPLE_INTERVAL while the block runs
    (and once at its start and end)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-memory", daemon=True)
        self.samples: list[int] = []

    def _sample(self) -> None:
        self.samples.append(int(self._client.info("memory")["used_memory"]))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()

    @property
    def peak(self) -> int:
        return max(self.samples)

    def __enter__(self) -> RedisMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass(frozen=True)
class Newsletter:
    queued: bulk_queue.Rate
    queue_peak_mb: float  # Redis used_memory, highest sample while queueing
    peak_mb: float  # highest sample throughout (queueing and drain)
    samples: int
    drain_seconds: float  # from the end of queueing to the M-th 250
    sent_rows: int  # rows `sent` once the worker stopped
    lost: int  # rows `sent` whose Message-ID never reached the sink
    duplicates: int  # messages the sink received twice (same Message-ID)


def _sent_message_ids(stack: Stack) -> set[str]:
    with stack.database.connect() as conn:
        rows = conn.execute("SELECT message_id FROM emails WHERE status = 'sent'")
        return {row[0] for row in rows}


def _newsletter(stack: Stack, sizes: Sizes) -> Newsletter:
    stack.reset()
    sink = stack.sink
    batch = delivery.begin(stack)
    mark = sink.arrivals_mark()
    with RedisMemory(stack.redis.client()) as redis_memory:
        beat = stack.start_beat()
        worker = None
        try:
            queued = bulk_queue.measure(
                stack.flask_app, bulk_queue.queue_bulk, sizes.bulk_emails, sizes.bulk_commit_every
            )
            queue_peak = redis_memory.peak
            queued_at = time.monotonic()
            worker = stack.start_worker(*prefork(WORKER_PROCESSES))
            sink.wait_for(
                batch.accepted + sizes.bulk_drained, timeout=120 + sizes.bulk_drained / 20
            )
            drain_seconds = max(0.0, sink.last_accepted_at - queued_at)
        finally:
            if worker is not None:
                stack.stop_process(worker)
            stack.stop_process(beat)
    sent = _sent_message_ids(stack)
    arrived = sink.arrivals(mark)
    return Newsletter(
        queued=queued,
        queue_peak_mb=queue_peak / MB,
        peak_mb=redis_memory.peak / MB,
        samples=len(redis_memory.samples),
        drain_seconds=drain_seconds,
        sent_rows=len(sent),
        lost=len(sent - arrived.keys()),
        duplicates=batch.duplicates(stack),
    )


def run(stack: Stack, sizes: Sizes, results: Results) -> None:
    stack.sink.set_delay(0.0)
    compared = bulk_queue.compare(stack, sizes.bulk_loop_emails, COMPARE_COMMIT_EVERY)
    news = _newsletter(stack, sizes)
    figures = results.figures
    figures["bulk.emails"] = sizes.bulk_emails
    figures["bulk.drained"] = sizes.bulk_drained
    figures["bulk.queue_seconds"] = news.queued.seconds
    figures["bulk.queue_rate"] = news.queued.per_second
    figures["bulk.redis_peak_mb"] = news.peak_mb
    figures["bulk.sent_rows"] = news.sent_rows
    figures["bulk.lost"] = news.lost
    figures["bulk.duplicates"] = news.duplicates
    compare_table = Table(
        f"7a. Queueing bulk emails: {sizes.bulk_loop_emails:,}, a commit every "
        f"{COMPARE_COMMIT_EVERY:,}, no worker",
        ["API", "emails/s", "in the calls alone", "time", "vs the send_email loop"],
    )
    loop = compared["send_email loop"]
    for name, rate in compared.items():
        compare_table.add(
            f"`{name}`",
            f"{rate.per_second:,.0f}",
            f"{rate.calls_per_second:,.0f}",
            f"{rate.seconds:.1f} s",
            f"{rate.per_second / loop.per_second:.1f}×",
        )
    compare_table.notes.append(
        "bench/bulk_queue.py, in the runner's process (PostgreSQL): the same bulk emails "
        "(templates/mail/new_user, each with its own name) through `send_bulk` and through "
        '`send_email(..., priority="bulk")` in a loop.'
    )
    table = Table(
        f"7b. A newsletter: {sizes.bulk_emails:,} bulk emails queued with `send_bulk` (a commit "
        f"every {sizes.bulk_commit_every:,}) while beat runs; then a worker ({WORKER_PROCESSES} "
        f"prefork) drains {sizes.bulk_drained:,} of them",
        [
            "queueing time",
            "emails/s",
            "Redis peak (queueing)",
            "Redis peak (throughout)",
            f"drain to {sizes.bulk_drained:,}",
            "rows sent",
            "lost",
            "duplicated",
        ],
    )
    table.add(
        f"{news.queued.seconds:.1f} s",
        f"{news.queued.per_second:,.0f}",
        f"{news.queue_peak_mb:.1f} MB",
        f"{news.peak_mb:.1f} MB",
        f"{news.drain_seconds:.1f} s",
        f"{news.sent_rows:,}",
        news.lost,
        news.duplicates,
    )
    table.notes.append(
        f"Redis `used_memory` sampled every {SAMPLE_INTERVAL:g} s ({news.samples} samples) "
        "from before beat starts until worker and beat are stopped. The drain runs from the "
        f"end of queueing (the worker's start-up included) to the sink's "
        f"{sizes.bulk_drained:,}th message; "
        "then worker and beat stop, and every row `sent` is looked up by Message-ID in the "
        "sink's arrivals log (lost: not there); duplicated: messages the sink received more "
        "than once. One measurement."
    )
    results.blocks.extend([compare_table, table])
