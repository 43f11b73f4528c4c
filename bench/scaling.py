"""Part 4, scaling: flasky's throughput with 1, 2 and 4 prefork processes."""

from __future__ import annotations

from bench.delivery import Repeated
from bench.report import Table
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from bench.throughput import flasky_prefork, summary


def run(stack: Stack, sizes: Sizes, repeated: Repeated, results: Results) -> None:
    count = sizes.throughput_emails
    stack.sink.set_delay(0.0)
    table = Table(
        f"4a. Scaling: flasky, {count} emails, prefork processes on this {_cores()}-core machine",
        ["processes", "time", "emails/s", "vs 1 process", "worker CPU per email"],
        chart="throughput",  # shown with table 2 when both ran
    )
    results.figures["scaling.emails"] = count
    first_rate = None
    for processes in sizes.scaling_processes:
        seconds, rate, cpu, _ = summary(flasky_prefork(stack, repeated, count, processes))
        first_rate = first_rate or rate
        results.figures[f"scaling.prefork-{processes}.rate"] = rate
        results.series.setdefault("scaling.prefork", []).append((processes, rate))
        table.add(
            processes,
            f"{seconds:.2f} s",
            f"{rate:.0f}",
            f"{rate / first_rate:.2f}×",
            f"{cpu:.2f} ms",
        )
    table.notes.append(
        "PostgreSQL, Redis and the sink share the same cores as the worker. Each email waits "
        "on round trips (two commits, Redis, SMTP) besides its CPU, so more processes than "
        "cores still overlap those waits. "
        f"Medians of {sizes.repeats} repeat(s)."
    )
    results.blocks.append(table)


def _cores() -> int:
    import os

    return os.cpu_count() or 1
