"""The run's charts, drawn next to the markdown it writes: for docs/benchmarks.md they go in
docs/benchmarks/ (the markdown file's name without `.md`), as SVG, and the markdown shows each
one with its table (report.Table.chart names it).

matplotlib is optional (the `bench` extra): without it the run says so in one line and
writes the tables alone. The figures themselves are in bench/plots.py.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from bench.results import Results

# Name (also the file's stem) -> the markdown image's alt text.
CHARTS = {
    "latency": "POST latency p50 and p99 against the SMTP server's delay, flasky and the book's "
    "6-4 and 6-5",
    "throughput": "Delivery throughput in emails per second, by pattern and by worker processes",
    "drain": "Emails delivered over time while the sweeper drains an outage's backlog",
}


@dataclass(frozen=True)
class Chart:
    name: str
    path: Path

    def markdown(self, docs: Path) -> str:
        """The markdown image that shows this chart in `docs`, linked relative to it."""
        link = Path(os.path.relpath(self.path, docs.parent)).as_posix()
        return f"![{CHARTS[self.name]}]({link})"


def _plots() -> ModuleType | None:
    """bench.plots, or None when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    from bench import plots

    return plots


def draw(results: Results, folder: Path, about: str) -> list[Chart] | None:
    """Draw every chart this run measured something for into `folder` (`<name>.svg`), and
    delete the files of the others (left by an earlier run, they would show other figures).
    `about` is the titles' second line (the machine, the date). None without matplotlib."""
    plots = _plots()
    if plots is None:
        return None
    drawn = []
    for name in CHARTS:
        path = folder / f"{name}.svg"
        figure = plots.DRAWERS[name](results.series, results.figures, about)
        if figure is None:
            path.unlink(missing_ok=True)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        plots.save(figure, path)
        drawn.append(Chart(name, path))
    return drawn


def folder_for(docs: Path) -> Path:
    """Where the charts of the markdown file `docs` go: docs/benchmarks.md -> docs/benchmarks/."""
    return docs.with_suffix("") if docs.suffix else docs.with_name(f"{docs.name}-charts")


def for_docs(results: Results, docs: Path, about: str) -> dict[str, str]:
    """Draw the charts next to `docs` (in folder_for(docs)) and return each one's markdown
    image by chart name, for report.blocks_markdown."""
    charts = draw(results, folder_for(docs), about)
    if charts is None:
        print(
            "bench: matplotlib is not installed, so no charts (it is in the dev extra)",
            file=sys.stderr,
        )
        return {}
    return {chart.name: chart.markdown(docs) for chart in charts}
