"""flasky's benchmarks in one command: `python3 bench/run.py` inside the venv (`make bench`).

Starts its own SMTP sink, redis-server, PostgreSQL database (created, migrated, dropped),
gunicorn and celery processes, runs the selected parts, prints the tables with ratios against
the baselines measured in the same run, and (for a full run, or with --docs) writes them into
docs/benchmarks.md, with charts in docs/benchmarks/. Everything it started is stopped at the
end, on an error or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python3 bench/run.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    backlog,
    bulk,
    charts,
    commit_latency,
    cost,
    latency,
    machine,
    priority,
    profile,
    queries,
    report,
    scaling,
    slow_smtp,
    targets,
    throughput,
)
from bench.delivery import Repeated  # noqa: E402
from bench.resources import Memory  # noqa: E402
from bench.results import Results  # noqa: E402
from bench.sizes import FULL, QUICK  # noqa: E402
from bench.stack import Stack  # noqa: E402

PARTS = (
    "latency",
    "throughput",
    "slow",
    "scaling",
    "backlog",
    "priority",
    "cost",
    "queries",
    "commit",
    "bulk",
)
DOCS = ROOT / "docs" / "benchmarks.md"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (~4 minutes)")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, from: {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--repeats", type=int, help="repeats per measurement (default: 3, quick: 1)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile the worker and the web (needs py-spy)"
    )
    parser.add_argument(
        "--docs",
        type=Path,
        help="write the results into this markdown file, and the charts into the folder of "
        f"its name (default for a full run: {DOCS.relative_to(ROOT)})",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only, write no markdown")
    args = parser.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    return args


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both unwind through the `finally` that stops everything (SIGINT
    too when a shell started the runner with it ignored, as for background jobs)."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _run_parts(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats, backlog_repeats=args.repeats)
    repeated = Repeated(sizes.repeats)
    selected = args.parts.split(",")
    threads_memory: dict[str, Memory] = {}
    steps = [
        ("latency", lambda: latency.run(stack, sizes, results)),
        ("throughput", lambda: throughput.run(stack, sizes, repeated, results)),
        ("slow", lambda: threads_memory.update(slow_smtp.run(stack, sizes, results))),
        ("scaling", lambda: scaling.run(stack, sizes, repeated, results)),
        ("backlog", lambda: backlog.run(stack, sizes, results)),
        ("priority", lambda: priority.run(stack, sizes, results)),
        ("cost", lambda: cost.run(stack, sizes, repeated, threads_memory, results)),
        ("queries", lambda: queries.run(stack, sizes, results)),
        ("commit", lambda: commit_latency.run(stack, sizes, results)),
        ("bulk", lambda: bulk.run(stack, sizes, results)),
    ]
    if args.profile:
        steps.append(("profile", lambda: profile.run(stack, sizes, results)))
        selected.append("profile")
    started = time.monotonic()
    for name, step in steps:
        if name not in selected:
            continue
        part_start = time.monotonic()
        print(
            f"[{time.monotonic() - started:6.0f} s] {name} (load {machine.load()})",
            file=sys.stderr,
            flush=True,
        )
        shown = len(results.blocks)
        step()
        print(
            f"         {name} done in {time.monotonic() - part_start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        for block in results.blocks[shown:]:
            if isinstance(block, report.Table):
                print(block.markdown() + "\n", flush=True)


def _generated(
    argv: list[str],
    results: Results,
    machine_table: report.Table,
    minutes: float,
    images: dict[str, str],
) -> str:
    command = " ".join(["python3 bench/run.py", *map(shlex.quote, argv)])
    lines = [
        f"Generated by `{command.strip()}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"in {minutes:.1f} minutes.",
        "",
        machine_table.markdown(),
        "",
        targets.judge(results.figures).markdown(),
    ]
    blocks = report.blocks_markdown(results.blocks, images)
    lines.extend(["", *(block + "\n" for block in blocks)])
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    _interrupt_on_signals()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="flasky-bench-"))
    stack = Stack(workdir)
    results = Results()
    load_before, revision_before = machine.load(), machine.revision()
    started = time.monotonic()
    try:
        stack.start()
        _run_parts(stack, args, results)
        machine_table = machine.describe(stack, load_before, revision_before)
    except BaseException:
        print(f"bench: failed; the processes' logs are in {workdir}", file=sys.stderr)
        raise
    finally:
        stack.close()
    minutes = (time.monotonic() - started) / 60
    print(machine_table.markdown() + "\n\n" + targets.judge(results.figures).markdown())
    docs = None if args.no_docs else args.docs or (None if args.quick else DOCS)
    if docs is not None:
        about = f"{machine.summary()}, {datetime.now(UTC):%Y-%m-%d}"
        images = charts.for_docs(results, docs, about)
        report.write_docs(docs, _generated(argv, results, machine_table, minutes, images))
        print(f"bench: results written to {docs}", file=sys.stderr)
        if images:
            print(f"bench: charts written to {charts.folder_for(docs)}", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
