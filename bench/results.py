"""What the parts of a run hand to the report: blocks of output and named figures."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.report import Details, Table


@dataclass
class Results:
    blocks: list[Table | Details] = field(default_factory=list)
    # Medians by name, e.g. "latency.sequential.flasky@1s.p50" (seconds), for the targets.
    figures: dict[str, float] = field(default_factory=dict)
