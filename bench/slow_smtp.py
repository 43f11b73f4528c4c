"""Part 3, a slow SMTP relay: the sink waits 1 s before each 250; ONE flasky worker process
(`--pool threads --concurrency 4`, FLASKY_SMTP_CONNECTIONS=128 sending threads) vs the naive
pattern on 2 prefork processes."""

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
CELERY_THREADS = 4
SMTP_CONNECTIONS = 128
LABEL = (
    f"flasky, one process: `--pool threads --concurrency {CELERY_THREADS}`, "
    f"FLASKY_SMTP_CONNECTIONS={SMTP_CONNECTIONS}"
)


def run(stack: Stack, sizes: Sizes, results: Results) -> dict[str, Memory]:
    """Run and report; return the flasky worker's memory by label (for part 5)."""
    stack.sink.set_delay(DELAY)
    try:
        naive = delivery.naive_repeats(stack, sizes.slow_naive_emails, prefork(2), sizes.repeats)
        flasky = delivery.flasky_repeats(
            stack,
            sizes.slow_emails,
            threads(CELERY_THREADS),
            sizes.repeats,
            extra_env={"FLASKY_SMTP_CONNECTIONS": str(SMTP_CONNECTIONS)},
        )
    finally:
        stack.sink.set_delay(0.0)
    naive_rate = summary(naive)[1]
    seconds, rate, cpu, duplicates = summary(flasky)
    # The worker is one process (threads pool): its peak RSS over the whole part.
    peak_rss = max(run.memory[0].peak_rss_mb for run in flasky)
    results.figures["slow.flasky.rate"] = rate
    results.figures["slow.flasky.peak_rss_mb"] = peak_rss
    results.figures["slow.naive.rate"] = naive_rate
    table = Table(
        f"3. Slow SMTP relay: {DELAY:.0f} s before each 250",
        [
            "pattern",
            "emails",
            "time",
            "emails/s",
            "vs naive",
            "worker CPU per email",
            "peak RSS",
            "duplicates",
        ],
    )
    table.add(
        LABEL,
        sizes.slow_emails,
        f"{seconds:.1f} s",
        f"{rate:.1f}",
        ratio(rate / naive_rate),
        f"{cpu:.2f} ms",
        f"{peak_rss:.0f} MB",
        duplicates,
    )
    seconds, _, cpu, _ = summary(naive)
    table.add(
        "naive Celery task, 2 prefork processes",
        sizes.slow_naive_emails,
        f"{seconds:.1f} s",
        f"{naive_rate:.1f}",
        ratio(1.0),
        f"{cpu:.2f} ms",
        "–",
        "–",
    )
    table.notes.append(
        "The naive pattern holds a process for the whole second of each send, so it gets a "
        "smaller batch (its rate is what is compared). flasky's worker takes a Celery message "
        f"of up to FLASKY_BATCH_SIZE ids per Celery thread and sends over its {SMTP_CONNECTIONS} "
        f"sending threads, one SMTP session each (worker/delivery.py): at most "
        f"{SMTP_CONNECTIONS} emails a second here. Peak RSS: VmHWM of the worker process "
        "(the only one: threads pool), after its last batch. The worker takes its repeats in "
        f"turn (started once); medians of {sizes.repeats} repeat(s)."
    )
    results.blocks.append(table)
    return {LABEL: flasky[-1].memory[0]}
