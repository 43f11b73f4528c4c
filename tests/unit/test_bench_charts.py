"""The benchmark's charts (bench/charts.py, bench/plots.py): drawn from a small hand-made
Results, as SVG files that parse and carry their labels, embedded in the markdown with links
that resolve, and left out (in one line, tables still written) without matplotlib."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import backlog, charts
from bench.report import Table, blocks_markdown, write_docs
from bench.results import Results

ABOUT = "2 × Test CPU, 1 GiB, 2026-01-01"
IMAGE = re.compile(r"!\[([^\]]+)\]\(([^)]+)\)")


def _latency(results: Results) -> None:
    for mode, clients in (("sequential", 1), ("concurrent", 8)):
        results.figures[f"latency.{mode}.requests"] = 10
        results.figures[f"latency.{mode}.clients"] = clients
        for app, delays in (("sync", (0, 1)), ("thread", (0, 1, 2)), ("flasky", (0, 1, 2))):
            slow = app == "sync"
            for p in (50, 99):
                results.series[f"latency.{mode}.p{p}.{app}"] = [
                    (d, (d if slow else 0) + 0.01 * clients * p / 50) for d in delays
                ]


def _throughput(results: Results) -> None:
    results.figures.update(
        {
            "throughput.emails": 300,
            "throughput.flasky.rate": 275.0,
            "throughput.naive.rate": 163.0,
            "throughput.loop.rate": 220.0,
        }
    )
    results.series["scaling.prefork"] = [(1, 252.0), (2, 275.0), (4, 329.0)]


def _drain(results: Results) -> None:
    results.figures["backlog.emails"] = 500
    results.series["backlog.drain.1"] = [(t / 4, min(500.0, 40.0 * t)) for t in range(14)]
    results.series["backlog.drain.1"].append((3.4, 500.0))


def _results() -> Results:
    results = Results()
    _latency(results)
    _throughput(results)
    _drain(results)
    results.blocks = [
        Table("1. Request latency", ["p50"], [["1 ms"]], chart="latency"),
        Table("2. Delivery throughput", ["emails/s"], [["275"]], chart="throughput"),
        Table("3. Slow SMTP relay", ["emails/s"], [["115"]]),
        Table("4a. Scaling", ["emails/s"], [["252"]], chart="throughput"),
        Table("4b. An outage's backlog", ["drain time"], [["3.4 s"]], chart="drain"),
    ]
    return results


def _texts(path: Path) -> str:
    """All the text of an SVG file, which must parse as XML (text is kept as text)."""
    tree = ET.parse(path)  # noqa: S314 (a file this test just wrote)
    assert tree.getroot().tag == "{http://www.w3.org/2000/svg}svg"
    return "\n".join(tree.getroot().itertext())


EXPECTED = {
    "latency": [
        "book 6-4 (mail.send in the request), p50",
        "book 6-5 (mail.send in a thread), p99",
        "flasky, p50",
        "flasky, p99",
        "POST latency (ms, log scale)",
        "SMTP server's delay before each 250",
        "10 sequential requests",
        "10 requests from 8 concurrent clients",
        ABOUT,
    ],
    "throughput": [
        "(outbox + Celery)",
        "naive Celery task",
        "1 smtplib connection",
        "emails delivered per second",
        "flasky's prefork processes",
        "275",
        "329",
        "300 emails queued first",
    ],
    "drain": [
        "emails delivered (cumulative)",
        "seconds since worker and beat were started",
        "500 delivered after 3.4 s",
        "500 due rows",
    ],
}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every chart, drawn once for the module's tests."""
    drawn = charts.draw(_results(), tmp_path_factory.mktemp("charts"), ABOUT)
    assert drawn is not None
    return {chart.name: chart.path for chart in drawn}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_chart_is_an_svg_with_its_labels_and_axis_titles(
    drawn: dict[str, Path], name: str
) -> None:
    assert set(drawn) == set(charts.CHARTS)
    assert drawn[name].name == f"{name}.svg"
    text = _texts(drawn[name])
    for label in EXPECTED[name]:
        assert label in text


def test_a_rerun_with_the_same_figures_writes_the_same_files(
    drawn: dict[str, Path], tmp_path: Path
) -> None:
    again = charts.draw(_results(), tmp_path, ABOUT)

    assert again is not None
    for chart in again:
        assert chart.path.read_bytes() == drawn[chart.name].read_bytes()
        assert b"<dc:date>" not in chart.path.read_bytes()


def test_only_the_measured_charts_are_drawn_and_stale_ones_removed(tmp_path: Path) -> None:
    charts.draw(_results(), tmp_path, ABOUT)
    latency_only = Results()
    _latency(latency_only)

    drawn = charts.draw(latency_only, tmp_path, ABOUT)

    assert drawn is not None
    assert [chart.name for chart in drawn] == ["latency"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latency.svg"]


def test_the_markdown_shows_each_chart_once_with_its_first_table(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "benchmarks.md"
    docs.parent.mkdir()
    docs.write_text("# Benchmarks\n\nprose\n\n<!-- bench:begin x -->\nold\n<!-- bench:end -->\n")
    results = _results()

    images = charts.for_docs(results, docs, ABOUT)
    write_docs(docs, "\n\n".join(blocks_markdown(results.blocks, images)))

    text = docs.read_text()
    links = [link for _, link in IMAGE.findall(text)]
    assert links == ["benchmarks/latency.svg", "benchmarks/throughput.svg", "benchmarks/drain.svg"]
    for link in links:
        assert (docs.parent / link).is_file()
    sections = text.split("### ")
    assert "throughput.svg" in next(s for s in sections if s.startswith("2. Delivery"))
    assert "svg" not in next(s for s in sections if s.startswith("4a. Scaling"))


def test_without_matplotlib_the_run_says_so_and_shows_no_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(charts, "_plots", lambda: None)
    results = _results()

    images = charts.for_docs(results, tmp_path / "benchmarks.md", ABOUT)

    assert images == {}
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "benchmarks").exists()
    markdown = "\n".join(blocks_markdown(results.blocks, images))
    assert "### 1. Request latency" in markdown
    assert "![" not in markdown


def test_the_drain_curve_counts_arrivals_at_even_steps_to_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backlog, "CURVE_POINTS", 4)
    start = 100.0

    curve = backlog._curve([start + 1.0, start + 1.1, start + 2.0], start, 2.0)

    assert curve == [(0.0, 0.0), (0.5, 0.0), (1.0, 1.0), (1.5, 2.0), (2.0, 3.0)]
