"""Part 5, cost: worker CPU and memory per email and per process, Redis memory per queued
email (normal priority: published at commit)."""

from __future__ import annotations

from bench import delivery, outbox_fill
from bench.delivery import Repeated
from bench.report import Table
from bench.resources import Memory
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from bench.stats import median
from bench.throughput import flasky_prefork, naive_prefork_2


def redis_bytes_per_email(stack: Stack, count: int, pattern: str) -> float:
    """used_memory with `count` emails waiting minus with none, per email (flasky's messages
    carry up to FLASKY_BATCH_SIZE ids each)."""
    from bench import naive_celery

    stack.reset()
    client = stack.redis.client()
    before = int(client.info("memory")["used_memory"])
    if pattern == "flasky":
        outbox_fill.queue_emails(stack.flask_app, count)
    else:
        email = outbox_fill.rendered_email(stack.flask_app)
        for _ in range(count):
            naive_celery.send_email.delay(
                email["to"], email["subject"], email["text_body"], email["html_body"]
            )
    if pattern == "flasky":
        per_message, queue = stack.flask_app.config["FLASKY_BATCH_SIZE"], "flasky.normal"
    else:
        per_message, queue = 1, naive_celery.celery.conf.task_default_queue
    expected = -(-count // per_message)
    waiting = client.llen(queue)
    if waiting != expected:
        raise RuntimeError(f"{pattern}: {waiting} messages waiting in Redis, expected {expected}")
    return (int(client.info("memory")["used_memory"]) - before) / count


def run(
    stack: Stack,
    sizes: Sizes,
    repeated: Repeated,
    threads_memory: dict[str, Memory],
    results: Results,
) -> None:
    stack.sink.set_delay(0.0)
    count = sizes.throughput_emails
    flasky_runs = flasky_prefork(stack, repeated, count, 2)
    naive_runs = naive_prefork_2(stack, repeated, count)
    redis_bytes = {
        pattern: median(
            [
                redis_bytes_per_email(stack, sizes.redis_probe_emails, pattern)
                for _ in range(sizes.repeats)
            ]
        )
        for pattern in ("flasky", "naive")
    }
    flasky_cpu = median([r.cpu_ms_per_email for r in flasky_runs if r.cpu_ms_per_email is not None])
    naive_cpu = median([r.cpu_ms_per_email for r in naive_runs if r.cpu_ms_per_email is not None])
    results.figures["cost.cpu_ms"] = flasky_cpu
    results.figures["cost.redis_bytes"] = redis_bytes["flasky"]
    table = Table(
        "5a. Cost per email and per worker process",
        ["measure", "flasky", "naive Celery pattern"],
    )
    table.add(
        "worker CPU per delivered email (2 prefork, no SMTP delay)",
        f"{flasky_cpu:.2f} ms",
        f"{naive_cpu:.2f} ms",
    )
    table.add(
        f"Redis memory per queued email ({sizes.redis_probe_emails} waiting)",
        f"{redis_bytes['flasky']:.0f} B",
        f"{redis_bytes['naive']:.0f} B",
    )
    table.add(
        "RSS, worker main process (prefork)", *(_main(runs) for runs in (flasky_runs, naive_runs))
    )
    table.add(
        "RSS, each pool process (prefork)", *(_children(runs) for runs in (flasky_runs, naive_runs))
    )
    for label, memory in threads_memory.items():
        table.add(f"RSS, worker of part 3 ({label})", _mb(memory), "–")
    table.notes.append(
        "RSS counts pages shared with the parent after fork in every process; PSS (in "
        "brackets) divides them among the sharers. Memory read from /proc/<pid>/smaps_rollup "
        "after a delivery run."
    )
    results.blocks.append(table)


def _mb(memory: Memory) -> str:
    return f"{memory.rss_mb:.0f} MB ({memory.pss_mb:.0f} MB)"


def _main(runs: list[delivery.Delivery]) -> str:
    return _mb(runs[-1].memory[0])


def _children(runs: list[delivery.Delivery]) -> str:
    return ", ".join(_mb(m) for m in runs[-1].memory[1:])
