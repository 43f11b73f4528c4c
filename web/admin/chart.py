"""The dashboard's delivery charts, drawn on the server as inline SVG.

Inline SVG loads nothing and runs nothing, so it needs no change to the pages' strict
Content-Security-Policy (web/security.py); it takes its colours and fonts from CSS classes in
static/style.css (no style= attribute), so it follows the page's light or dark scheme. Every
number a chart shows is also text: a <title> per bar (the browser's tooltip), the totals in
the figure's caption, and the figure's <title> and <desc> for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup

from web.outbox import activity
from web.outbox.activity import Backlog, Timeline, Window

WIDTH = 340  # the viewBox's width: about the pixels of a column at 1280 px and on a phone
TEXT_WIDTH = 7.5  # about how wide a character of the charts' 13px text is, for the legend
LEGEND_HEIGHT = 26

# What the charts call each attempt outcome and each kind of waiting email.
OUTCOME_NAMES = {"sent": "sent", "retry": "retried", "failed": "failed"}
BACKLOG_NAMES = {"queued": "queued (due)", "retrying": "retrying", "sending": "sending"}
WINDOW_TITLES = {"hour": "Last hour, per minute", "day": "Last day, per 30 minutes"}


@dataclass(frozen=True)
class Figure:
    """One chart of the dashboard, with its title and its numbers as a sentence."""

    id: str
    title: str
    caption: str
    svg: Markup


def delivery_figures(now: datetime | None = None) -> list[Figure]:
    """The dashboard's charts: attempts over the last hour and day, and the backlog now."""
    figures = []
    for window in activity.WINDOWS:
        line = activity.timeline(window, now)
        figure_id = f"chart-{window.name}"
        caption = _sentence(line.totals, OUTCOME_NAMES)
        figures.append(
            Figure(figure_id, WINDOW_TITLES[window.name], caption, timeline_svg(line, figure_id))
        )
    waiting = activity.backlog(now)
    caption = _sentence(waiting.totals, BACKLOG_NAMES)
    title = "Waiting now, by priority"
    figures.append(Figure("chart-backlog", title, caption, backlog_svg(waiting, "chart-backlog")))
    return figures


def timeline_svg(line: Timeline, chart_id: str) -> Markup:
    """Stacked bars of attempts per interval (sent, retried, failed from the bottom up), with a
    legend, a y axis of attempts and an x axis of time before now."""
    height, left, right, top = 180, 40, WIDTH - 8, LEGEND_HEIGHT + 8
    bottom = height - 22
    scale_top = nice_ceiling(max((i.total for i in line.intervals), default=0))
    per_attempt = (bottom - top) / scale_top
    slot = (right - left) / line.window.intervals
    parts = [
        _open_svg(chart_id, height, WINDOW_TITLES[line.window.name], line.totals, OUTCOME_NAMES),
        _legend(OUTCOME_NAMES),
    ]
    for value in _ticks(scale_top):
        y = bottom - value * per_attempt
        parts.append(_line("grid", left, y, right, y))
        parts.append(_text("y-label", left - 4, y + 4, str(value), anchor="end"))
    for number, interval in enumerate(line.intervals):
        if not interval.total:
            continue
        x = left + number * slot + slot * 0.1
        label = f"{_period(line, number)}: {_sentence(interval.counts, OUTCOME_NAMES)}"
        parts.append(Markup('<g class="interval"><title>{}</title>').format(label))
        y = bottom
        for outcome in OUTCOME_NAMES:
            count = interval.counts[outcome]
            if count:
                y -= count * per_attempt
                parts.append(_bar(outcome, x, y, max(slot * 0.8, 1), count * per_attempt, count))
        parts.append(Markup("</g>"))
    parts.append(_line("axis", left, bottom, right, bottom))
    for half, anchor in enumerate(("middle", "middle", "end")):
        ago = _ago(line.window.span * (2 - half) / 2)
        parts.append(
            _text("x-label", left + (right - left) * half / 2, height - 6, ago, anchor=anchor)
        )
    if not any(i.total for i in line.intervals):
        middle = (top + bottom) / 2
        parts.append(_text("empty", (left + right) / 2, middle, "no attempts", anchor="middle"))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def backlog_svg(waiting: Backlog, chart_id: str) -> Markup:
    """A bar per priority, split into queued (due), retrying and sending, with its total."""
    row_height, left, right = 30, 64, WIDTH - 44
    height = LEGEND_HEIGHT + 8 + row_height * len(waiting.counts)
    per_email = (right - left) / max(waiting.largest, 1)
    title = "Emails waiting now, by priority"
    parts = [
        _open_svg(chart_id, height, title, waiting.totals, BACKLOG_NAMES),
        _legend(BACKLOG_NAMES),
    ]
    for row, (priority, counts) in enumerate(waiting.counts.items()):
        y = LEGEND_HEIGHT + 8 + row * row_height
        label = f"{priority}: {_sentence(counts, BACKLOG_NAMES)}"
        parts.append(Markup('<g class="priority-row"><title>{}</title>').format(label))
        parts.append(_text("y-label", 0, y + 17, priority))
        parts.append(_line("axis", left, y + 2, left, y + row_height - 4))
        x = left
        for status in BACKLOG_NAMES:
            if counts[status]:
                width = counts[status] * per_email
                parts.append(_bar(status, x, y + 4, width, row_height - 10, counts[status]))
                x += width
        total = waiting.total(priority)
        parts.append(_text("total", WIDTH - 2, y + 17, f"{total:,}", anchor="end"))
        parts.append(Markup("</g>"))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least `value`: the top of a y axis."""
    scale = 1
    while True:
        for factor in (1, 2, 5):
            if factor * scale >= value:
                return factor * scale
        scale *= 10


def _ticks(scale_top: int) -> list[int]:
    """The y axis's labelled values: 0, the middle when it is a whole number, and the top."""
    middle = [scale_top // 2] if scale_top >= 2 and scale_top % 2 == 0 else []
    return [0, *middle, scale_top]


def _sentence(counts: dict[str, int], names: dict[str, str]) -> str:
    """E.g. "120 sent, 3 retried, 1 failed"."""
    return ", ".join(f"{counts.get(key, 0):,} {name}" for key, name in names.items())


def _period(line: Timeline, number: int) -> str:
    """Interval `number` of the timeline as time before now, e.g. "5–4 min ago"."""
    window: Window = line.window
    since = window.span - number * window.step
    until = since - window.step
    if not until:
        return f"{_ago(since)} – now"
    return f"{_ago(since).removesuffix(' ago')} – {_ago(until)}"


def _ago(delta: timedelta) -> str:
    """ "now", "45 min ago", "6 h ago", "1 h 30 min ago"."""
    minutes = int(delta.total_seconds() // 60)
    if minutes == 0:
        return "now"
    if minutes <= 60:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min ago" if minutes else f"{hours} h ago"


def _open_svg(
    chart_id: str, height: int, title: str, totals: dict[str, int], names: dict[str, str]
) -> Markup:
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{0}-svg" '
        'viewBox="0 0 {1} {2}" role="img" aria-labelledby="{0}-title {0}-desc">'
        '<title id="{0}-title">{3}</title><desc id="{0}-desc">{4}</desc>'
    ).format(chart_id, WIDTH, height, title, _sentence(totals, names))


def _legend(names: dict[str, str]) -> Markup:
    """A swatch and a name per series, in a row along the top."""
    parts, x = [Markup('<g class="legend">')], 0.0
    for key, name in names.items():
        swatch = Markup('<rect class="swatch {}" x="{:.1f}" y="6" width="12" height="12"/>')
        parts.append(swatch.format(key, x))
        parts.append(_text("legend-label", x + 16, 16, name))
        x += 16 + len(name) * TEXT_WIDTH + 14
    parts.append(Markup("</g>"))
    return Markup("").join(parts)


def _bar(kind: str, x: float, y: float, width: float, height: float, count: int) -> Markup:
    return Markup(
        '<rect class="bar {}" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" '
        'data-count="{}"/>'
    ).format(kind, x, y, width, height, count)


def _line(kind: str, x1: float, y1: float, x2: float, y2: float) -> Markup:
    return Markup('<line class="{}" x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}"/>').format(
        kind, x1, y1, x2, y2
    )


def _text(kind: str, x: float, y: float, text: str, *, anchor: str = "start") -> Markup:
    return Markup('<text class="{}" x="{:.1f}" y="{:.1f}" text-anchor="{}">{}</text>').format(
        kind, x, y, anchor, text
    )
