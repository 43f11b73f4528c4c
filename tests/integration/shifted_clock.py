"""Run a celery command with flasky's clock shifted:
`python -m tests.integration.shifted_clock --ahead SECONDS -- -A worker worker ...` (the
arguments after `--` are celery's, without "celery").

It replaces `web.clock.now` before celery imports the app, then runs celery's own `main()` in
this process, so everything the outbox stores or compares in it (the claim, `sent_at`, the
sweeper's "due" test) is SECONDS ahead of the real time. Prefork children are forked from this
process and keep the shifted clock. Nothing else is faked: sockets, Redis, the database and
Celery's own timers still run on real time.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from web import clock

USAGE = "usage: python -m tests.integration.shifted_clock --ahead SECONDS -- CELERY_ARGS..."


def shift(seconds: float) -> None:
    """Make `web.clock.now()` return the real time plus `seconds`."""
    ahead = timedelta(seconds=seconds)

    def shifted_now() -> datetime:
        return datetime.now(UTC) + ahead

    clock.now = shifted_now


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[0] != "--ahead" or argv[2] != "--":
        raise SystemExit(USAGE)
    try:
        seconds = float(argv[1])
    except ValueError:
        raise SystemExit(f"--ahead: not a number of seconds: {argv[1]!r}\n{USAGE}") from None
    shift(seconds)
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *argv[3:]]
    celery_main()


if __name__ == "__main__":
    main(sys.argv[1:])
