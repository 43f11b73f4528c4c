"""The issue's targets, judged from the medians of one run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.report import Table


@dataclass(frozen=True)
class Target:
    text: str
    measured: Callable[[dict[str, float]], float]
    passes: Callable[[float], bool]
    show: Callable[[float], str]


def _fig(name: str) -> Callable[[dict[str, float]], float]:
    return lambda f: f[name]


def _ratio(top: str, bottom: str) -> Callable[[dict[str, float]], float]:
    return lambda f: f[top] / f[bottom]


def _times(value: float) -> str:
    return f"{value:.2f}×" if value < 100 else f"{value:.0f}×"


TARGETS = [
    *(
        target
        for mode in ("sequential", "concurrent")
        for target in (
            Target(
                f"POST p50 at SMTP delay 1 s ≥ 100× faster than the synchronous baseline ({mode})",
                _ratio(f"latency.{mode}.sync@1s.p50", f"latency.{mode}.flasky@1s.p50"),
                lambda v: v >= 100,
                _times,
            ),
            Target(
                f"POST p99 at 1 s no worse than the thread baseline's ({mode})",
                _ratio(f"latency.{mode}.flasky@1s.p99", f"latency.{mode}.thread@1s.p99"),
                lambda v: v <= 1.0,
                _times,
            ),
            Target(
                f"POST p99 at SMTP delay 2 s within 1.3× of p99 at 0 s ({mode})",
                _ratio(f"latency.{mode}.flasky@2s.p99", f"latency.{mode}.flasky@0s.p99"),
                lambda v: v <= 1.3,
                _times,
            ),
        )
    ),
    Target(
        "Throughput ≥ 2× the naive Celery pattern (outbox durability included)",
        _ratio("throughput.flasky.rate", "throughput.naive.rate"),
        lambda v: v >= 2,
        _times,
    ),
    Target(
        "Throughput with the 1 s SMTP server ≥ 15× the naive pattern (threads pool, 32)",
        _ratio("slow.flasky-threads-32.rate", "slow.naive.rate"),
        lambda v: v >= 15,
        _times,
    ),
    Target(
        "Worker CPU per delivered email ≤ 3 ms",
        _fig("cost.cpu_ms"),
        lambda v: v <= 3,
        lambda v: f"{v:.2f} ms",
    ),
    Target(
        "Redis memory per queued email ≤ 1.5 KB",
        _fig("cost.redis_bytes"),
        lambda v: v <= 1536,
        lambda v: f"{v:.0f} B",
    ),
    Target(
        "Claim query time at 1,000,000 rows within 1.5× of 10,000 rows (PostgreSQL execution)",
        _fig("queries.claim.execution_ratio"),
        lambda v: v <= 1.5,
        _times,
    ),
]


def judge(figures: dict[str, float]) -> Table:
    table = Table("Targets", ["target", "measured", "verdict"])
    for target in TARGETS:
        try:
            value = target.measured(figures)
        except KeyError:
            table.add(target.text, "–", "not measured in this run")
            continue
        table.add(
            target.text, target.show(value), "**met**" if target.passes(value) else "**not met**"
        )
    return table
