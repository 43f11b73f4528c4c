"""Part 3, a slow SMTP server: the sink waits 1 s before each 250; flasky's threads pool at
several sizes vs the naive pattern on 2 prefork processes."""

from __future__ import annotations

from bench import delivery
from bench.delivery import prefork, threads
from bench.report import Table, ratio
from bench.resources import Memory
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from bench.throughput import summary

DELAY = 1.0


def run(stack: Stack, sizes: Sizes, results: Results) -> dict[int, Memory]:
    """Run and report; return the worker's memory per threads-pool size (for part 5)."""
    stack.sink.set_delay(DELAY)
    try:
        naive = delivery.naive_repeats(stack, sizes.slow_naive_emails, prefork(2), sizes.repeats)
        flasky = {
            size: delivery.flasky_repeats(stack, sizes.slow_emails, threads(size), sizes.repeats)
            for size in sizes.slow_concurrency
        }
    finally:
        stack.sink.set_delay(0.0)
    naive_rate = summary(naive)[1]
    table = Table(
        f"3. Slow SMTP server: {DELAY:.0f} s before each 250",
        ["pattern", "emails", "time", "emails/s", "vs naive", "worker CPU per email"],
    )
    for size, runs in flasky.items():
        seconds, rate, cpu, _ = summary(runs)
        results.figures[f"slow.flasky-threads-{size}.rate"] = rate
        table.add(
            f"flasky `--pool threads --concurrency {size}`",
            sizes.slow_emails,
            f"{seconds:.1f} s",
            f"{rate:.1f}",
            ratio(rate / naive_rate),
            f"{cpu:.2f} ms",
        )
    seconds, rate, cpu, _ = summary(naive)
    results.figures["slow.naive.rate"] = naive_rate
    table.add(
        "naive Celery task, 2 prefork processes",
        sizes.slow_naive_emails,
        f"{seconds:.1f} s",
        f"{rate:.1f}",
        ratio(1.0),
        f"{cpu:.2f} ms",
    )
    table.notes.append(
        "The naive pattern holds a process for the whole second of each send, so it gets a "
        "smaller batch (its rate is what is compared). flasky's per-thread SMTP connections "
        "are reused (worker/smtp.py). N threads send at most N emails a second here, and "
        f"{sizes.slow_emails} emails need ceil({sizes.slow_emails}/N) rounds of 1 s: with 32 "
        "threads, 10 rounds, so at best 30 emails/s, 15.0× the naive 2/s. Each worker takes "
        f"its repeats in turn (started once); medians of {sizes.repeats} repeat(s)."
    )
    results.blocks.append(table)
    return {size: runs[-1].memory[0] for size, runs in flasky.items()}
