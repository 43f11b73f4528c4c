"""Part 2, delivery throughput: flasky vs the naive Celery pattern vs one process and smtplib."""

from __future__ import annotations

from bench import delivery
from bench.delivery import Delivery, Repeated, prefork
from bench.report import Table, ratio
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from bench.stats import median


def flasky_prefork(stack: Stack, repeated: Repeated, count: int, processes: int) -> list[Delivery]:
    return repeated.get(
        f"flasky-prefork-{processes}-{count}",
        lambda: delivery.flasky(stack, count, prefork(processes)),
    )


def naive_prefork_2(stack: Stack, repeated: Repeated, count: int) -> list[Delivery]:
    return repeated.get(
        f"naive-prefork-2-{count}", lambda: delivery.naive(stack, count, prefork(2))
    )


def summary(runs: list[Delivery]) -> tuple[float, float, float | None, int]:
    """Median seconds, median emails/s, median CPU ms per email, total duplicates."""
    cpu = [r.cpu_ms_per_email for r in runs if r.cpu_ms_per_email is not None]
    return (
        median([r.seconds for r in runs]),
        median([r.rate for r in runs]),
        median(cpu) if cpu else None,
        sum(r.duplicates for r in runs),
    )


def run(stack: Stack, sizes: Sizes, repeated: Repeated, results: Results) -> None:
    count = sizes.throughput_emails
    stack.sink.set_delay(0.0)
    rows = [
        (
            "flasky: outbox + Celery, `--pool prefork --concurrency 2`",
            "flasky",
            flasky_prefork(stack, repeated, count, 2),
        ),
        (
            "naive Celery task, Flask-Mail `mail.send`, 2 prefork processes",
            "naive",
            naive_prefork_2(stack, repeated, count),
        ),
        (
            "one process, one smtplib connection, no queue (floor)",
            "loop",
            repeated.get(f"loop-{count}", lambda: delivery.smtp_loop(stack, count)),
        ),
    ]
    table = Table(
        f"2. Delivery throughput: {count} emails, queued first, to the sink (no delay)",
        ["pattern", "time", "emails/s", "vs naive", "worker CPU per email", "duplicates"],
        chart="throughput",
    )
    naive_rate = summary(rows[1][2])[1]
    results.figures["throughput.emails"] = count
    for label, key, runs in rows:
        seconds, rate, cpu, duplicates = summary(runs)
        results.figures[f"throughput.{key}.rate"] = rate
        results.figures[f"throughput.{key}.duplicates"] = duplicates
        if cpu is not None:
            results.figures[f"throughput.{key}.cpu_ms"] = cpu
        table.add(
            label,
            f"{seconds:.2f} s",
            f"{rate:.0f}",
            ratio(rate / naive_rate),
            "–" if cpu is None else f"{cpu:.2f} ms",
            duplicates,
        )
    table.notes.append(
        "Time: from the sink's first MAIL FROM to its last 250 (worker start-up excluded). "
        "flasky's figure includes the outbox: every row claimed and marked sent in PostgreSQL "
        "(checked after each repeat: a row left unsent stops the run). Worker CPU: user + "
        "system time of the worker's main process and its pool processes, from the first "
        f"delivery to the last outcome, per email. Medians of {sizes.repeats} repeat(s)."
    )
    results.blocks.append(table)
