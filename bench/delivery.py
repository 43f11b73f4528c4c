"""Timed deliveries of a batch of emails, from the queue to the sink.

Either the batch is queued first and the worker started after (`flasky`, `naive`), or one
running worker takes several batches in turn (`*_repeats`, for batches long enough that
start-up would dominate). The clock runs from the first MAIL FROM the sink sees in the batch
to its last 250, so worker start-up is never counted; CPU is sampled once the first message
has arrived and again when the batch is complete, over the worker's main process and all its
children.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from bench import outbox_fill
from bench.resources import Memory, cpu_seconds, memory
from bench.stack import Stack
from devtools.proc import tree
from devtools.processes import Process
from devtools.waiting import wait_until


@dataclass(frozen=True)
class Delivery:
    emails: int
    seconds: float  # first MAIL FROM to the last 250
    cpu_ms_per_email: float | None  # None for the in-runner loop
    duplicates: int  # messages the sink received twice (same Message-ID)
    memory: list[Memory]  # the worker's processes, main first

    @property
    def rate(self) -> float:
        return self.emails / self.seconds


def _timeout(count: int) -> float:
    """Generous: a batch slower than one email a second has gone wrong."""
    return 120 + count


Observer = Callable[[Process], AbstractContextManager[object]]


@dataclass(frozen=True)
class Batch:
    """Where the sink's counters stood when a batch began."""

    accepted: int
    unique_ids: int

    def duplicates(self, stack: Stack) -> int:
        """Messages of this batch the sink received more than once (same Message-ID)."""
        sink = stack.sink
        return (sink.accepted - self.accepted) - (sink.unique_ids - self.unique_ids)


def begin(stack: Stack) -> Batch:
    """Start timing a batch at the sink."""
    return Batch(stack.sink.start_batch(), stack.sink.unique_ids)


def _measure(
    stack: Stack,
    batch: Batch,
    count: int,
    worker: Process,
    settled: Callable[[], bool],
    observe: Observer | None = None,
) -> Delivery:
    """Wait for `count` messages of `batch` at the sink, timing and costing them."""
    sink = stack.sink
    with observe(worker) if observe else nullcontext():
        sink.wait_for(batch.accepted + 1, timeout=120)
        cpu_before, accepted_before = cpu_seconds(worker.pid), sink.accepted
        sink.wait_for(batch.accepted + count, timeout=_timeout(count))
        seconds = sink.batch_seconds()
        wait_until(settled, 60, "the outcome of the last email to be recorded")
        cpu = cpu_seconds(worker.pid) - cpu_before
        delivered_since = sink.accepted - accepted_before
    return Delivery(
        emails=count,
        seconds=seconds,
        cpu_ms_per_email=1000 * cpu / max(delivered_since, 1),
        duplicates=batch.duplicates(stack),
        memory=[memory(pid) for pid in tree(worker.pid)],
    )


def _sent_count(stack: Stack) -> int:
    with stack.database.connect() as conn:
        row = conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()
    return int(row[0]) if row else 0


def _check_sent(stack: Stack, count: int) -> None:
    sent = _sent_count(stack)
    if sent != count:
        raise RuntimeError(f"flasky: {sent} of {count} outbox rows are sent")


def _queue_naive(stack: Stack, count: int) -> None:
    from bench import naive_celery

    email = outbox_fill.rendered_email(stack.flask_app)
    for _ in range(count):
        naive_celery.send_email.delay(
            email["to"], email["subject"], email["text_body"], email["html_body"]
        )


def flasky(
    stack: Stack, count: int, worker_args: list[str], observe: Observer | None = None
) -> Delivery:
    """`count` emails through send_email (committed, so published), then start the worker."""
    stack.reset()
    batch = begin(stack)
    outbox_fill.queue_emails(stack.flask_app, count)
    worker = stack.start_worker(*worker_args)
    try:
        delivery = _measure(
            stack, batch, count, worker, lambda: _sent_count(stack) >= count, observe
        )
    finally:
        stack.stop_process(worker)
    _check_sent(stack, count)
    return delivery


def naive(stack: Stack, count: int, worker_args: list[str]) -> Delivery:
    """The naive pattern: `count` tasks carrying the whole email, then start its worker."""
    stack.reset()
    batch = begin(stack)
    _queue_naive(stack, count)
    worker = stack.start_worker(*worker_args, app="bench.naive_celery")
    try:
        return _measure(stack, batch, count, worker, lambda: True)
    finally:
        stack.stop_process(worker)


def flasky_repeats(
    stack: Stack,
    count: int,
    worker_args: list[str],
    repeats: int,
    extra_env: dict[str, str] | None = None,
) -> list[Delivery]:
    """`repeats` batches through one running worker (long batches: start-up once)."""
    worker = stack.start_worker(*worker_args, extra_env=extra_env)
    deliveries = []
    try:
        for _ in range(repeats):
            stack.reset()
            batch = begin(stack)
            outbox_fill.queue_emails(stack.flask_app, count)
            deliveries.append(
                _measure(stack, batch, count, worker, lambda: _sent_count(stack) >= count)
            )
            _check_sent(stack, count)
    finally:
        stack.stop_process(worker)
    return deliveries


def naive_repeats(stack: Stack, count: int, worker_args: list[str], repeats: int) -> list[Delivery]:
    worker = stack.start_worker(*worker_args, app="bench.naive_celery")
    deliveries = []
    try:
        for _ in range(repeats):
            stack.reset()
            batch = begin(stack)
            _queue_naive(stack, count)
            deliveries.append(_measure(stack, batch, count, worker, lambda: True))
    finally:
        stack.stop_process(worker)
    return deliveries


def smtp_loop(stack: Stack, count: int) -> Delivery:
    """The floor: one process builds each message as the worker does and sends it over one
    smtplib connection; no queue, no database."""
    from worker.claims import ClaimedEmail
    from worker.message import build_message, message_bytes

    email = outbox_fill.rendered_email(stack.flask_app)
    now = datetime.now(UTC).replace(tzinfo=None)
    sink = stack.sink
    base = sink.start_batch()
    with stack.flask_app.app_context():
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=30) as smtp:
            for number in range(count):
                claimed = ClaimedEmail(
                    id=number,
                    attempts=1,
                    recipients=[email["to"]],
                    sender=email["sender"],
                    subject=email["subject"],
                    text_body=email["text_body"],
                    html_body=email["html_body"],
                    message_id=f"<{uuid.uuid4().hex}@example.com>",
                    created_at=now,
                    cc=None,
                    bcc=None,
                    reply_to=None,
                    send_at=None,
                    attachment_count=0,
                )
                message = build_message(claimed)
                smtp.sendmail(message.sender, claimed.recipients, message_bytes(message))
        seconds = time.perf_counter() - start
    sink.wait_for(base + count, timeout=30)
    return Delivery(emails=count, seconds=seconds, cpu_ms_per_email=None, duplicates=0, memory=[])


class Repeated:
    """Repeated deliveries, each measured once per run and shared by the parts reporting it
    (flasky's 2-process figure appears under throughput, scaling and cost)."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self._measured: dict[str, list[Delivery]] = {}

    def get(self, key: str, measure: Callable[[], Delivery]) -> list[Delivery]:
        if key not in self._measured:
            self._measured[key] = [measure() for _ in range(self.repeats)]
        return self._measured[key]


def prefork(processes: int) -> list[str]:
    return ["--pool", "prefork", "--concurrency", str(processes)]


def threads(count: int) -> list[str]:
    return ["--pool", "threads", "--concurrency", str(count)]
