"""What the parts of a run hand to the report: blocks of output, named figures and series."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.report import Details, Table

Point = tuple[float, float]


@dataclass
class Results:
    blocks: list[Table | Details] = field(default_factory=list)
    # Medians by name, e.g. "latency.sequential.flasky@1s.p50" (seconds), for the targets.
    figures: dict[str, float] = field(default_factory=dict)
    # (x, y) points by name, for the charts (bench/charts.py), e.g.
    # "latency.sequential.p50.flasky": (SMTP delay s, latency s) for each delay measured.
    series: dict[str, list[Point]] = field(default_factory=dict)
