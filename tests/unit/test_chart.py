"""The dashboard's delivery charts (web/admin/chart.py): well-formed SVG that needs nothing
from the page's CSP, a legend, bars as tall as their counts, and every number as text too."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from web.admin.chart import backlog_svg, nice_ceiling, timeline_svg
from web.outbox.activity import DAY, HOUR, OUTCOMES, Backlog, Interval, Timeline, Window

SVG = "{http://www.w3.org/2000/svg}"
END = datetime(2026, 11, 30, 0, 0)


def timeline(window: Window, counts: dict[int, dict[str, int]]) -> Timeline:
    """A timeline of `window` ending at END, with `counts` for some intervals (by number)."""
    start = END - window.span
    intervals = [
        Interval(start + n * window.step, {o: counts.get(n, {}).get(o, 0) for o in OUTCOMES})
        for n in range(window.intervals)
    ]
    return Timeline(window, END, intervals)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg"
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [rect for rect in root.iter(f"{SVG}rect") if "bar" in rect.get("class", "").split()]


def legend(root: ET.Element) -> list[str]:
    group = root.find(f"{SVG}g[@class='legend']")
    assert group is not None, "no legend"
    return [text.text for text in group.iter(f"{SVG}text")]


def test_the_hour_chart_has_a_legend_axes_and_a_stacked_bar_per_busy_minute() -> None:
    line = timeline(HOUR, {0: {"sent": 2}, 59: {"sent": 4, "retry": 2, "failed": 1}})
    root = parse(timeline_svg(line, "chart-hour"))

    assert legend(root) == ["sent", "retried", "failed"]
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Last hour, per minute"
    assert root.find(f"{SVG}desc").text == "6 sent, 2 retried, 1 failed"
    x_labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "x-label"]
    assert x_labels == ["60 min ago", "30 min ago", "now"]
    y_labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "y-label"]
    assert y_labels == ["0", "5", "10"]  # 7 attempts in the busiest minute: an axis to 10

    drawn = [(bar.get("class"), int(bar.get("data-count"))) for bar in bars(root)]
    assert drawn == [
        ("bar sent", 2),
        ("bar sent", 4),
        ("bar retry", 2),
        ("bar failed", 1),
    ]
    # Heights in proportion to the counts; each stack sits on the axis, one segment on another.
    heights = [float(bar.get("height")) for bar in bars(root)]
    assert heights[1] == pytest.approx(2 * heights[0]) == pytest.approx(4 * heights[3])
    axis = next(line for line in root.iter(f"{SVG}line") if line.get("class") == "axis")
    last = bars(root)[1:]
    assert float(last[0].get("y")) + heights[1] == pytest.approx(float(axis.get("y1")))
    for lower, upper in zip(last, last[1:], strict=False):
        assert float(upper.get("y")) + float(upper.get("height")) == pytest.approx(
            float(lower.get("y")), abs=0.1
        )
    # The last minute is the rightmost; each busy minute says its numbers in its tooltip.
    assert float(last[0].get("x")) > float(bars(root)[0].get("x"))
    tooltips = [
        g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "interval"
    ]
    assert tooltips == [
        "60 min – 59 min ago: 2 sent, 0 retried, 0 failed",
        "1 min ago – now: 4 sent, 2 retried, 1 failed",
    ]


def test_the_day_chart_counts_half_hours() -> None:
    line = timeline(DAY, {45: {"failed": 3}})
    root = parse(timeline_svg(line, "chart-day"))
    x_labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "x-label"]
    assert x_labels == ["24 h ago", "12 h ago", "now"]
    assert [(b.get("class"), b.get("data-count")) for b in bars(root)] == [("bar failed", "3")]
    (group,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "interval"]
    assert group.find(f"{SVG}title").text == "1 h 30 min – 60 min ago: 0 sent, 0 retried, 3 failed"


def test_a_quiet_hour_says_so() -> None:
    root = parse(timeline_svg(timeline(HOUR, {}), "chart-hour"))
    assert bars(root) == []
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "empty"] == ["no attempts"]


def test_the_backlog_chart_has_a_bar_per_priority_split_by_status() -> None:
    waiting = Backlog(
        {
            "high": {"queued": 0, "retrying": 0, "sending": 0},
            "normal": {"queued": 6, "retrying": 2, "sending": 4},
            "bulk": {"queued": 3, "retrying": 0, "sending": 0},
            "<odd>": {"queued": 1, "retrying": 0, "sending": 0},  # a priority no code writes
        }
    )
    svg = backlog_svg(waiting, "chart-backlog")
    root = parse(svg)
    assert legend(root) == ["queued (due)", "retrying", "sending"]
    assert "<odd>" not in svg and "&lt;odd&gt;" in svg
    rows = [g for g in root.iter(f"{SVG}g") if g.get("class") == "priority-row"]
    names = [
        next(t.text for t in g.iter(f"{SVG}text") if t.get("class") == "y-label") for g in rows
    ]
    assert names == ["high", "normal", "bulk", "<odd>"]
    totals = [next(t.text for t in g.iter(f"{SVG}text") if t.get("class") == "total") for g in rows]
    assert totals == ["0", "12", "3", "1"]
    normal = [(b.get("class"), int(b.get("data-count"))) for b in bars(rows[1])]
    assert normal == [("bar queued", 6), ("bar retrying", 2), ("bar sending", 4)]
    widths = [float(b.get("width")) for b in bars(rows[1])]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2)
    assert float(bars(rows[2])[0].get("width")) == pytest.approx(widths[0] / 2, abs=0.2)
    assert rows[1].find(f"{SVG}title").text == "normal: 6 queued (due), 2 retrying, 4 sending"


@pytest.mark.parametrize(
    "svg",
    [
        timeline_svg(timeline(HOUR, {3: {"sent": 1}}), "chart-hour"),
        backlog_svg(Backlog({"high": {"queued": 1, "retrying": 0, "sending": 0}}), "b"),
    ],
    ids=["timeline", "backlog"],
)
def test_the_charts_need_nothing_the_csp_refuses(svg: str) -> None:
    """No style attribute or element, no script, no link out: colours come from style.css."""
    for element in parse(svg).iter():
        assert element.tag.removeprefix(SVG) not in {
            "style",
            "script",
            "image",
            "a",
            "foreignObject",
        }
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
        assert not any("href" in name for name in element.attrib)


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (450, 500), (501, 1000)]
)
def test_the_y_axis_ends_at_a_round_number(value: int, top: int) -> None:
    assert nice_ceiling(value) == top
