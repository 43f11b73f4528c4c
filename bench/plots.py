"""The figures of bench/charts.py, drawn with matplotlib's object API.

No pyplot: a `Figure` made directly needs no display and no backend choice (savefig picks the
SVG writer from the file name), and leaves no global state behind in the runner. Each
function returns None when the run measured nothing it could draw.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from bench.results import Point

STYLE: dict[str, object] = {
    "svg.fonttype": "none",  # text stays text: small files, labels a test can find
    "svg.hashsalt": "flasky-bench",  # fixed element ids: a rerun changes only what changed
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
    "font.size": 10,
    "axes.titlesize": 10,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
}
# Okabe-Ito colours (readable with colour blindness), one per app or pattern in every chart.
COLOURS = {
    "sync": "#D55E00",
    "thread": "#E69F00",
    "flasky": "#0072B2",
    "naive": "#CC79A7",
    "loop": "#999999",
}
APPS = {
    "sync": "book 6-4 (mail.send in the request)",
    "thread": "book 6-5 (mail.send in a thread)",
    "flasky": "flasky",
}
PATTERNS = {
    "flasky": "flasky\n(outbox + Celery)",
    "naive": "naive Celery task\n(Flask-Mail)",
    "loop": "no queue: 1 process,\n1 smtplib connection",
}
LATENCY_MODES = ("sequential", "concurrent")


def save(figure: Figure, path: Path) -> None:
    """Write `figure` as SVG without the date and the matplotlib version in its metadata, so
    that a rerun with the same figures writes the same file."""
    with matplotlib.rc_context(STYLE):
        figure.savefig(path, format="svg", metadata={"Date": None, "Creator": None})


def _plain_numbers(ax: Axes) -> None:
    """The log scale's ticks at 1, 2, 5 × 10^n, written as plain numbers (not 10^n)."""
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _latency_title(mode: str, figures: dict[str, float]) -> str:
    requests = figures.get(f"latency.{mode}.requests")
    clients = figures.get(f"latency.{mode}.clients")
    if requests is None or clients is None:
        return mode
    if clients == 1:
        return f"{requests:.0f} sequential requests"
    return f"{requests:.0f} requests from {clients:.0f} concurrent clients"


def latency(series: dict[str, list[Point]], figures: dict[str, float], about: str) -> Figure | None:
    """POST latency p50 and p99 against the SMTP server's delay, one panel per load."""
    modes = [m for m in LATENCY_MODES if any(k.startswith(f"latency.{m}.") for k in series)]
    if not modes:
        return None
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(4.3 * len(modes) + 0.6, 4.6), layout="constrained")
        axes = figure.subplots(1, len(modes), sharey=True, squeeze=False)[0]
        for ax, mode in zip(axes, modes, strict=True):
            delays: set[float] = set()
            for app, label in APPS.items():
                for p, line, face in ((50, "-", COLOURS[app]), (99, "--", "white")):
                    points = sorted(series.get(f"latency.{mode}.p{p}.{app}", []))
                    if not points:
                        continue
                    delays.update(x for x, _ in points)
                    ax.plot(
                        [x for x, _ in points],
                        [y * 1000 for _, y in points],
                        linestyle=line,
                        marker="o",
                        markerfacecolor=face,
                        color=COLOURS[app],
                        label=f"{label}, p{p}",
                    )
            ax.set_yscale("log")
            _plain_numbers(ax)
            ax.grid(True, axis="y")
            ax.set_xticks(sorted(delays), [f"{d:g} s" for d in sorted(delays)])
            ax.set_xlim(min(delays) - 0.15, max(delays) + 0.15)
            ax.set_xlabel("SMTP server's delay before each 250")
            ax.set_title(_latency_title(mode, figures))
        axes[0].set_ylabel("POST latency (ms, log scale)")
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9)
        figure.suptitle(f"The name form's POST latency, p50 and p99, against SMTP delay\n{about}")
    return figure


def _bars(ax: Axes, labels: list[str], values: list[float], colours: list[str]) -> None:
    bars = ax.bar(labels, values, color=colours, width=0.6)
    ax.bar_label(bars, [f"{v:,.0f}" for v in values], padding=2)
    ax.grid(True, axis="y")
    ax.tick_params(axis="x", length=0)


def throughput(
    series: dict[str, list[Point]], figures: dict[str, float], about: str
) -> Figure | None:
    """Emails/s per pattern (2 processes each), and flasky's by prefork processes."""
    patterns = [key for key in PATTERNS if f"throughput.{key}.rate" in figures]
    scaling = sorted(series.get("scaling.prefork", []))
    panels = [n for n in (len(patterns), len(scaling)) if n]
    if not panels:
        return None
    count = figures.get("throughput.emails", figures.get("scaling.emails", 0))
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(3.0 + 1.3 * sum(panels), 4.2), layout="constrained")
        axes = list(
            figure.subplots(1, len(panels), sharey=True, width_ratios=panels, squeeze=False)[0]
        )
        if patterns:
            ax = axes.pop(0)
            _bars(
                ax,
                [PATTERNS[key] for key in patterns],
                [figures[f"throughput.{key}.rate"] for key in patterns],
                [COLOURS[key] for key in patterns],
            )
            ax.set_title("by pattern (Celery workers: 2 prefork processes)")
        if scaling:
            ax = axes.pop(0)
            _bars(
                ax,
                [f"{processes:g}" for processes, _ in scaling],
                [rate for _, rate in scaling],
                [COLOURS["flasky"]] * len(scaling),
            )
            ax.set_xlabel("flasky's prefork processes")
            ax.set_title("flasky, by worker processes")
        figure.axes[0].set_ylabel("emails delivered per second")
        figure.suptitle(
            f"Delivery throughput: {count:,.0f} emails queued first, SMTP sink without delay\n"
            f"{about}"
        )
    return figure


def drain(series: dict[str, list[Point]], figures: dict[str, float], about: str) -> Figure | None:
    """Emails delivered against time while the sweeper drains an outage's backlog."""
    prefix = "backlog.drain."
    curves = sorted(
        (k for k in series if k.startswith(prefix)), key=lambda k: int(k[len(prefix) :])
    )
    if not curves:
        return None
    count = figures.get("backlog.emails", series[curves[0]][-1][1])
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(7.5, 4.2), layout="constrained")
        ax = figure.subplots()
        for number, key in enumerate(curves, 1):
            points = series[key]
            label = f"drain {number}" if len(curves) > 1 else None
            ax.plot(
                [x for x, _ in points],
                [y for _, y in points],
                color=COLOURS["flasky"],
                alpha=1.0 if number == 1 else 0.5,
                label=label,
            )
        end, delivered = series[curves[0]][-1]
        ax.plot([end], [delivered], marker="o", color=COLOURS["flasky"])
        ax.annotate(
            f"{delivered:,.0f} delivered after {end:.1f} s",
            xy=(end, delivered),
            xytext=(-6, 3),  # above and left of the end: a rising curve leaves it empty
            textcoords="offset points",
            ha="right",
            va="bottom",
        )
        ax.set_xlim(left=0)
        ax.set_ylim(0, count * 1.1)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.grid(True)
        ax.set_xlabel("seconds since worker and beat were started")
        ax.set_ylabel("emails delivered (cumulative)")
        if len(curves) > 1:
            ax.legend(loc="lower right")
        figure.suptitle(
            f"An outage's backlog: {count:,.0f} due rows, Redis empty, drained by the sweeper\n"
            f"worker (2 prefork processes) and beat; {about}"
        )
    return figure


Draw = Callable[[dict[str, list[Point]], dict[str, float], str], Figure | None]
DRAWERS: dict[str, Draw] = {"latency": latency, "throughput": throughput, "drain": drain}
