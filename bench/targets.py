"""The targets (issue 11's, and the request-latency ones that still apply), judged from the
medians of one run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.report import Table

Figures = dict[str, float]


@dataclass(frozen=True)
class Target:
    text: str
    measured: Callable[[Figures], float]
    passes: Callable[[float], bool]
    show: Callable[[float], str]
    # Figures that must also be 0 (duplicates, lost emails), each with how it is shown.
    zero: tuple[tuple[str, str], ...] = ()


def _fig(name: str) -> Callable[[Figures], float]:
    return lambda f: f[name]


def _ratio(top: str, bottom: str) -> Callable[[Figures], float]:
    return lambda f: f[top] / f[bottom]


def _times(value: float) -> str:
    return f"{value:.2f}×" if value < 100 else f"{value:.0f}×"


def _unit(unit: str, digits: int = 0) -> Callable[[float], str]:
    return lambda v: f"{v:,.{digits}f} {unit}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _latency_targets() -> list[Target]:
    """The request-latency targets, sequentially and with the concurrent clients."""
    targets = []
    for mode, who in (("sequential", "sequential"), ("concurrent", "8 clients")):
        targets += [
            Target(
                f"POST p50 at SMTP delay 1 s ≥ 100× faster than the book's 6-4 ({who})",
                _ratio(f"latency.{mode}.sync@1s.p50", f"latency.{mode}.flasky@1s.p50"),
                lambda v: v >= 100,
                _times,
            ),
            Target(
                f"POST p99 ({who}) ≤ the book's thread version (6-5), SMTP delay 1 s",
                _ratio(f"latency.{mode}.flasky@1s.p99", f"latency.{mode}.thread@1s.p99"),
                lambda v: v <= 1.0,
                _times,
            ),
            Target(
                f"POST p99 at SMTP delay 2 s within 1.3× of p99 at 0 s ({who})",
                _ratio(f"latency.{mode}.flasky@2s.p99", f"latency.{mode}.flasky@0s.p99"),
                lambda v: v <= 1.3,
                _times,
            ),
        ]
    return targets


TARGETS = [
    Target(
        "Throughput, fast sink, 2 worker processes: ≥ 2× the naive pattern, every row sent, "
        "0 duplicates",
        _ratio("throughput.flasky.rate", "throughput.naive.rate"),
        lambda v: v >= 2,
        _times,
        zero=(("throughput.flasky.duplicates", "duplicates"),),
    ),
    Target(
        "Worker CPU per delivered email ≤ 2.5 ms (all worker processes)",
        _fig("throughput.flasky.cpu_ms"),
        lambda v: v <= 2.5,
        _unit("ms", 2),
    ),
    Target(
        "Throughput ≥ the no-queue floor (one process, one smtplib connection)",
        _ratio("throughput.flasky.rate", "throughput.loop.rate"),
        lambda v: v >= 1,
        _times,
    ),
    Target(
        "1 s relay, one worker process: ≥ 100 emails/s",
        _fig("slow.flasky.rate"),
        lambda v: v >= 100,
        _unit("emails/s", 1),
    ),
    Target(
        "1 s relay, one worker process: RSS ≤ 250 MB (peak)",
        _fig("slow.flasky.peak_rss_mb"),
        lambda v: v <= 250,
        _unit("MB"),
    ),
    Target(
        "1,000,000 bulk emails queued with send_bulk (PostgreSQL, commit every 10,000, beat "
        "feeding Redis) in ≤ 200 s (a smaller run: its time scaled to a million)",
        lambda f: f["bulk.queue_seconds"] * 1_000_000 / f["bulk.emails"],
        lambda v: v <= 200,
        _unit("s"),
    ),
    Target(
        "Redis used_memory peak ≤ 50 MB, sampled every second while queueing and draining",
        _fig("bulk.redis_peak_mb"),
        lambda v: v <= 50,
        _unit("MB", 1),
    ),
    Target(
        "Bulk drain: every counted email delivered, 0 lost, 0 duplicated",
        lambda f: f["bulk.sent_rows"] / f["bulk.drained"],
        lambda v: v >= 1,
        lambda v: f"rows sent ÷ emails counted: {v:.2f}",
        zero=(("bulk.lost", "lost"), ("bulk.duplicates", "duplicated")),
    ),
    *_latency_targets(),
    Target(
        "Commit → 250 p50 at low load ≤ 100 ms",
        _fig("commit.p50"),
        lambda v: v <= 0.1,
        _ms,
    ),
    *(
        Target(
            f"{name.capitalize()} statement at {{large}} rows within 1.5× of {{small}} "
            "(PostgreSQL execution)",
            _fig(f"queries.{name}.execution_ratio"),
            lambda v: v <= 1.5,
            _times,
        )
        for name in ("claim", "sweep")
    ),
]


def _text(target: Target, figures: Figures) -> str:
    """The target's text with the run's sizes filled in (the quick run's are smaller)."""
    small, large = figures.get("queries.small_rows"), figures.get("queries.large_rows")
    if small is None or large is None:
        return target.text.format(small="10,000", large="1,000,000")
    return target.text.format(small=f"{small:,.0f}", large=f"{large:,.0f}")


def judge(figures: Figures) -> Table:
    table = Table("Targets", ["target", "measured", "verdict"])
    for target in TARGETS:
        text = _text(target, figures)
        try:
            value = target.measured(figures)
            zeros = [(figures[name], label) for name, label in target.zero]
        except KeyError:
            table.add(text, "–", "not measured in this run")
            continue
        shown = ", ".join([target.show(value), *(f"{n:.0f} {label}" for n, label in zeros)])
        met = target.passes(value) and all(n == 0 for n, _ in zeros)
        table.add(text, shown, "**PASS**" if met else "**FAIL**")
    return table
