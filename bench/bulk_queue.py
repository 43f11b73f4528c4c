"""How fast the web queues a bulk: `send_bulk` against `send_email` in a loop, on PostgreSQL.

Both queue the same N bulk emails (templates/mail/new_user, each with its own name) into a
fresh, migrated database, committing every `--commit-every` emails (bulk emails are not
published at commit: each commit asks for a sweep). The figures split the time spent in the
calls (check, render, INSERT) from the time spent in the commits. No worker runs. The part
"bulk" of bench/run.py (bench/bulk.py) uses this comparison and `queue_bulk`/`measure`.

    .venv/bin/python -m bench.bulk_queue --emails 20000 [--commit-every 1000] [--profile]

`--profile` runs the bulk once more with its `send_bulk` calls under cProfile and prints the
top functions.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from bench.outbox_fill import SUBJECT, TEMPLATE
from bench.stack import Stack
from devtools.environment import ADMIN
from web.extensions import db
from web.outbox.api import send_email
from web.outbox.bulk import Recipient, send_bulk

Queue = Callable[[int, int], None]  # (first number, count): queue that many emails, no commit


@dataclass(frozen=True)
class Rate:
    emails: int
    calls_s: float  # inside send_bulk / send_email
    commits_s: float  # COMMIT and publishing the ids

    @property
    def seconds(self) -> float:
        return self.calls_s + self.commits_s

    @property
    def per_second(self) -> float:
        return self.emails / self.seconds

    @property
    def calls_per_second(self) -> float:
        return self.emails / self.calls_s

    def __str__(self) -> str:
        return (
            f"{self.per_second:7,.0f} emails/s with the commits, {self.calls_per_second:7,.0f} "
            f"in the calls alone (calls {self.calls_s:.2f} s, commits and publishing "
            f"{self.commits_s:.2f} s)"
        )


def queue_bulk(first: int, count: int) -> None:
    recipients = [
        Recipient(ADMIN, {"name": f"bench-{number}"}) for number in range(first, first + count)
    ]
    send_bulk(SUBJECT, TEMPLATE, recipients)


def queue_one_by_one(first: int, count: int) -> None:
    for number in range(first, first + count):
        send_email(ADMIN, SUBJECT, TEMPLATE, priority="bulk", name=f"bench-{number}")


def measure(app: Flask, queue: Queue, emails: int, commit_every: int) -> Rate:
    """Queue `emails` with `queue`, `commit_every` per transaction, in the calling process."""
    calls = commits = 0.0
    with app.app_context():
        for first in range(0, emails, commit_every):
            start = time.perf_counter()
            queue(first, min(commit_every, emails - first))
            committing = time.perf_counter()
            db.session.commit()
            calls += committing - start
            commits += time.perf_counter() - committing
        db.session.remove()
    return Rate(emails, calls, commits)


def profile(app: Flask, emails: int, commit_every: int, top: int = 30) -> None:
    """cProfile the `send_bulk` calls of one run (the commits and the publishing are not
    included: their time is in the figures). Imported here: under bench/run.py, bench/ is on
    the path and its profile.py hides the standard library's, which cProfile imports."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    with app.app_context():
        for first in range(0, emails, commit_every):
            profiler.runcall(queue_bulk, first, min(commit_every, emails - first))
            db.session.commit()
        db.session.remove()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def compare(stack: Stack, emails: int, commit_every: int) -> dict[str, Rate]:
    """`send_bulk` and the `send_email` loop, each on an empty outbox and Redis, no worker."""
    rates = {}
    for name, queue in (("send_bulk", queue_bulk), ("send_email loop", queue_one_by_one)):
        stack.reset()
        rates[name] = measure(stack.flask_app, queue, emails, commit_every)
    stack.reset()
    return rates


def run(emails: int, commit_every: int, with_profile: bool) -> None:
    """The command line: a stack of its own (no worker is started), the comparison printed."""
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(Path(workdir))
        try:
            stack.start()
            rates = compare(stack, emails, commit_every)
            for name, rate in rates.items():
                print(f"{name:16} {rate}", flush=True)
            bulk, loop = rates["send_bulk"], rates["send_email loop"]
            print(
                f"send_bulk / send_email loop: {bulk.per_second / loop.per_second:.1f}x with the "
                f"commits, {bulk.calls_per_second / loop.calls_per_second:.1f}x in the calls "
                f"({emails:,} emails, a commit every {commit_every:,})"
            )
            if with_profile:
                profile(stack.flask_app, emails, commit_every)
        finally:
            stack.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--commit-every", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile one more bulk run")
    args = parser.parse_args(argv)
    run(args.emails, args.commit_every, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
