"""How delivery goes over time: the dashboard's chart and /metrics ask these queries.

Every query groups in SQL and returns at most a few hundred small rows, however many attempts
the table holds: the attempts per interval read the window's rows from the index
ix_delivery_attempts_finished_at_outcome alone and group them by interval and outcome; the
totals are one count per outcome. Intervals are whole multiples of their length since the
epoch (minutes, half hours), computed as integers in SQL the same way on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, extract, func, or_, select

from web.extensions import db
from web.models import (
    AttemptOutcome,
    DeliveryAttempt,
    Email,
    EmailStatus,
    PurgedAttempts,
    utcnow,
)
from web.outbox.priority import Priority

OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in AttemptOutcome)
PRIORITIES: tuple[str, ...] = tuple(priority.value for priority in Priority)
# The backlog's kinds of waiting: due and not yet taken, waiting for a retry, being sent.
BACKLOG_STATUSES: tuple[str, ...] = tuple(
    status.value for status in (EmailStatus.QUEUED, EmailStatus.RETRYING, EmailStatus.SENDING)
)
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Window:
    """A stretch of time up to now, cut into intervals of `step`."""

    name: str  # "hour", "day"
    span: timedelta
    step: timedelta

    @property
    def intervals(self) -> int:
        return self.span // self.step


HOUR = Window("hour", timedelta(hours=1), timedelta(minutes=1))
DAY = Window("day", timedelta(days=1), timedelta(minutes=30))
WINDOWS: tuple[Window, ...] = (HOUR, DAY)


@dataclass(frozen=True)
class Interval:
    """The attempts that finished in [start, start + the window's step), by outcome."""

    start: datetime  # naive UTC
    counts: dict[str, int]  # every outcome of OUTCOMES, zeros included

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Timeline:
    window: Window
    end: datetime  # the end of the last interval, the one now is in
    intervals: list[Interval]  # oldest first; the last one is still going on

    @property
    def start(self) -> datetime:
        return self.end - self.window.span

    @property
    def totals(self) -> dict[str, int]:
        """Attempts per outcome over the whole window."""
        return {o: sum(i.counts[o] for i in self.intervals) for o in OUTCOMES}


def timeline(window: Window, now: datetime | None = None) -> Timeline:
    """Attempts per interval and outcome over `window`, up to `now` (naive UTC)."""
    step = int(window.step.total_seconds())
    end_seconds = (_seconds(now or utcnow()) // step + 1) * step  # the current interval's end
    end = _EPOCH + timedelta(seconds=end_seconds)
    start = end - window.span
    start_seconds = end_seconds - int(window.span.total_seconds())
    index = (_epoch_seconds(DeliveryAttempt.finished_at) - start_seconds) // step
    rows = db.session.execute(
        select(index, DeliveryAttempt.outcome, func.count())
        .where(DeliveryAttempt.finished_at >= start, DeliveryAttempt.finished_at < end)
        .group_by(index, DeliveryAttempt.outcome)
    )
    counts = {n: dict.fromkeys(OUTCOMES, 0) for n in range(window.intervals)}
    for number, outcome, count in rows:
        if number in counts and outcome in OUTCOMES:  # an outcome no code writes is left out
            counts[number][outcome] = count
    intervals = [Interval(start + n * window.step, counts[n]) for n in range(window.intervals)]
    return Timeline(window, end, intervals)


@dataclass(frozen=True)
class Backlog:
    """The emails waiting now, by priority, then by BACKLOG_STATUSES (zeros included).

    "queued" counts only the due ones: a scheduled email is not waiting yet.
    """

    counts: dict[str, dict[str, int]]

    def total(self, priority: str) -> int:
        return sum(self.counts[priority].values())

    @property
    def totals(self) -> dict[str, int]:
        """Emails per status of BACKLOG_STATUSES, over every priority."""
        return {s: sum(c[s] for c in self.counts.values()) for s in BACKLOG_STATUSES}

    @property
    def largest(self) -> int:
        return max((self.total(p) for p in self.counts), default=0)


def backlog(now: datetime | None = None) -> Backlog:
    now = now or utcnow()
    not_scheduled = or_(
        Email.status != EmailStatus.QUEUED, Email.send_at.is_(None), Email.send_at <= now
    )
    rows = db.session.execute(
        select(Email.priority, Email.status, func.count())
        .where(Email.status.in_(BACKLOG_STATUSES), not_scheduled)
        .group_by(Email.priority, Email.status)
    )
    counts = {p: dict.fromkeys(BACKLOG_STATUSES, 0) for p in PRIORITIES}
    for priority, status, count in rows:
        counts.setdefault(priority, dict.fromkeys(BACKLOG_STATUSES, 0))[status] = count
    return Backlog(counts)


def emails_by_status_and_priority() -> dict[tuple[str, str], int]:
    """How many emails have each (status, priority), for the pairs that have any."""
    rows = db.session.execute(
        select(Email.status, Email.priority, func.count()).group_by(Email.status, Email.priority)
    )
    return {(status, priority): count for status, priority, count in rows}


def attempt_totals() -> dict[str, int]:
    """Every attempt ever made, by outcome (every outcome, zeros included): the attempts kept
    plus those `flask outbox purge` deleted with their emails and counted in purged_attempts.
    The purge moves a count from one to the other in one transaction, so these never go down.
    """
    totals = dict.fromkeys(OUTCOMES, 0)
    kept = select(DeliveryAttempt.outcome, func.count()).group_by(DeliveryAttempt.outcome)
    purged = select(PurgedAttempts.outcome, PurgedAttempts.count)
    for statement in (kept, purged):
        for outcome, count in db.session.execute(statement):
            totals[outcome] = totals.get(outcome, 0) + (count or 0)
    return totals


def _seconds(moment: datetime) -> int:
    """Whole seconds since the epoch of a naive UTC time."""
    return int(moment.replace(tzinfo=UTC).timestamp())


def _epoch_seconds(column: ColumnElement[datetime]) -> ColumnElement[int]:
    """`_seconds` in SQL, for a naive UTC DateTime column (truncated, as `_seconds` is)."""
    if db.session.get_bind().dialect.name == "sqlite":
        # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff"; strftime would round the fraction to
        # milliseconds (23:05:59.9999 into 23:06), so it gets the whole seconds only.
        return cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
    # PostgreSQL: a timestamp without time zone's epoch is taken as UTC. CAST would round.
    return cast(func.floor(extract("epoch", column)), BigInteger)
