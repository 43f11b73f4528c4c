"""Scheduled sends and priorities, against real parts: Redis, Celery workers, the SMTP server.

- An email for 5 seconds ahead is held until its time, then sent within one sweep.
- An email for tomorrow survives an emptied Redis and restarted processes, and is sent exactly
  once when the clock gets there (the processes run on a shifted clock:
  tests/integration/shifted_clock.py).
- A high-priority email overtakes a backlog of 2,000 bulk ones.

Every test runs on SQLite and on PostgreSQL (see `database_url` in conftest.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import redis
from flask import Flask

from devtools.processes import Process
from devtools.smtp_server import ReceivedMessage, SMTPServer
from devtools.waiting import wait_until
from tests.integration.conftest import subprocess_env, worker_in_thread
from web.extensions import db
from web.models import Email
from web.outbox.api import publish, send_email
from worker.tasks import sweep_outbox

SWEEP_INTERVAL = 0.5  # seconds, here and (subprocess_env) in the subprocesses
# Celery's log line for a finished task: "Task flasky.sweep_outbox[<id>] succeeded in 0.01s: 2"
_SWEEP_DONE = re.compile(r"Task flasky\.sweep_outbox\[[^\]]+\] succeeded in [^:]+: (\d+)")


def _queue(app: Flask, *args: object, **kwargs: object) -> int:
    with app.app_context():
        email_id = send_email(*args, **kwargs)
        db.session.commit()
        return email_id


def _row(app: Flask, email_id: int) -> Email:
    with app.app_context():
        row = db.session.get(Email, email_id)
        assert row is not None, f"email {email_id} is not in the outbox"
        db.session.expunge(row)
        db.session.rollback()  # end the read transaction: no snapshot held open (PostgreSQL)
        return row


def _naive_utc(moment: datetime) -> datetime:
    """`moment` as the outbox stores it: naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _date_header(message: ReceivedMessage) -> datetime:
    return parsedate_to_datetime(str(message.parsed()["Date"])).astimezone(UTC)


def _record_arrival_times(smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """time.time() at the moment the server stores each message, in the order of `messages`.

    The server stores a message when it answers 250 to the final "."; waiting for messages and
    then reading the clock would only give an upper bound, which cannot show an early arrival.
    """
    arrivals: list[float] = []
    keep = smtp_server.keep

    def keep_and_time(message: ReceivedMessage) -> None:
        arrivals.append(time.time())
        keep(message)

    monkeypatch.setattr(smtp_server, "keep", keep_and_time)
    return arrivals


class _Sweeper:
    """What beat does, from a thread of the test: run the sweeper every `interval` seconds.

    `runs` holds (started, finished, emails published) per sweep, by time.time().
    """

    def __init__(self, app: Flask, interval: float) -> None:
        self.app = app
        self.interval = interval
        self.runs: list[tuple[float, float, int]] = []
        self.errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def __enter__(self) -> _Sweeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def started_after(self, moment: float) -> int:
        return sum(1 for started, _, _ in self.runs if started > moment)

    def _run(self) -> None:
        with self.app.app_context():
            while not self._stopping.wait(self.interval):
                started = time.time()
                try:
                    published = sweep_outbox()
                except BaseException as exc:  # reported by the test, not lost in a thread
                    self.errors.append(exc)
                    return
                self.runs.append((started, time.time(), published))


def test_an_email_for_5_seconds_ahead_is_held_until_then_and_sent_within_a_sweep(
    app: Flask,
    redis_url: str,
    celery_worker: object,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arrivals = _record_arrival_times(smtp_server, monkeypatch)
    with _Sweeper(app, SWEEP_INTERVAL) as sweeper:
        send_at = datetime.now(UTC) + timedelta(seconds=5)
        due = send_at.timestamp()
        email_id = _queue(
            app, "rosa@example.com", "See you at five", "mail/test_email", send_at=send_at
        )
        # A message for it that comes too early (published by hand, or by a sweeper on a host
        # whose clock runs fast) is taken by the worker, whose claim refuses the row.
        with app.app_context():
            assert publish([(email_id, "normal")]) == []
        broker = redis.Redis.from_url(redis_url)
        wait_until(
            lambda: broker.llen("flasky.normal") == 0 and broker.hlen("unacked") == 0,
            3,
            "the worker to take the early message",
        )

        # Held: until half a second before its time the worker and the sweeper run, and the
        # SMTP server receives nothing; the row is not even claimed.
        while time.time() < due - 0.5:
            assert len(smtp_server.messages) == 0, "the email was sent before its send_at"
            row = _row(app, email_id)
            assert (row.status, row.attempts) == ("queued", 0)
            time.sleep(0.05)

        (message,) = smtp_server.wait_for_messages(
            1, timeout=due - time.time() + SWEEP_INTERVAL + 10
        )
        # A few more sweeps: a sent email is never published again.
        wait_until(lambda: sweeper.started_after(arrivals[0]) >= 3, 10, "three more sweeps")
    assert sweeper.errors == []

    held = [published for _, finished, published in sweeper.runs if finished < due]
    assert len(held) >= 5, f"only {len(held)} sweeps ran before the send_at"
    assert set(held) == {0}, f"a sweep before the send_at published something: {sweeper.runs}"
    assert arrivals[0] >= due, f"the email arrived {due - arrivals[0]:.3f}s before its send_at"
    late = arrivals[0] - due
    assert late < SWEEP_INTERVAL + 2.0, f"sent {late:.2f}s after its send_at, not within a sweep"

    assert len(smtp_server.messages) == 1
    assert message.rcpt_tos == ["rosa@example.com"]
    row = _row(app, email_id)
    assert (row.status, row.attempts) == ("sent", 1)
    assert row.send_at == _naive_utc(send_at)
    assert row.sent_at is not None and row.sent_at >= row.send_at
    assert message.message_id == row.message_id
    # Dated the time it was scheduled for, not the time it was queued.
    assert _date_header(message) == send_at.replace(microsecond=0)


def _worker_ready(process: Process) -> bool:
    assert process.popen.poll() is None, f"{process.name} exited:\n{process.output()}"
    return " ready." in process.output()


def _sweeps(process: Process) -> list[int]:
    """How many emails each sweep that `process` (a worker) ran published, in order."""
    return [int(published) for published in _SWEEP_DONE.findall(process.output())]


def _wait_for_sweeps(worker: Process, count: int, after: int) -> list[int]:
    """Wait until `worker` has run `count` sweeps beyond the first `after`; return those."""

    def enough() -> bool:
        assert worker.popen.poll() is None, f"{worker.name} exited:\n{worker.output()}"
        return len(_sweeps(worker)) >= after + count

    wait_until(enough, 30, f"{count} sweeps by {worker.name}", interval=0.1)
    return _sweeps(worker)[after:]


@pytest.fixture
def celery_env(
    database_url: str, redis_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> dict[str, str]:
    """The environment of the test's `celery` and `flask` subprocesses (sweeps every 0.5 s)."""
    return subprocess_env(database_url, redis_url, smtp_server.port, tmp_path)


@pytest.fixture
def celery(
    celery_env: dict[str, str], processes: list[Process], tmp_path: Path
) -> Callable[..., Process]:
    """Start `celery -A worker ARGS`, on flasky's clock shifted `ahead` seconds if given;
    every process started is stopped at the end of the test (`processes`)."""

    def start(name: str, *args: str, ahead: float = 0.0) -> Process:
        if ahead:
            launcher = ["-m", "tests.integration.shifted_clock", "--ahead", str(ahead), "--"]
        else:
            launcher = ["-m", "celery"]
        command = [sys.executable, *launcher, "-A", "worker", *args, "--loglevel", "INFO"]
        process = Process(name, command, celery_env, tmp_path)
        processes.append(process)
        return process

    return start


@pytest.mark.slow
def test_an_email_for_tomorrow_survives_an_empty_redis_and_restarts_and_goes_once_when_due(
    app: Flask,
    redis_url: str,
    smtp_server: SMTPServer,
    celery_env: dict[str, str],
    celery: Callable[..., Process],
) -> None:
    worker = celery("worker-today", "worker", "--concurrency", "2")
    beat = celery("beat-today", "beat")
    wait_until(lambda: _worker_ready(worker), 60, "the worker to be ready")

    # Queued from the command line, in a time zone of its own, for this time tomorrow.
    send_at = (datetime.now(UTC) + timedelta(days=1)).astimezone(
        timezone(timedelta(hours=5, minutes=30))
    )
    cli = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "web", "send-test-email", "tomorrow@example.com"]
        + ["--at", send_at.isoformat()],
        env=celery_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    queued = re.search(r"queued test email (\d+) to tomorrow@example\.com", cli.stdout)
    assert queued, cli.stdout
    email_id = int(queued.group(1))

    # Today, sweep after sweep, nothing is published and nothing is sent.
    assert _wait_for_sweeps(worker, 4, after=len(_sweeps(worker))) == [0, 0, 0, 0]
    assert smtp_server.messages == []
    row = _row(app, email_id)
    assert (row.status, row.attempts) == ("queued", 0)
    assert row.send_at == row.next_attempt_at == _naive_utc(send_at)

    # Every process stops, Redis loses everything; they come back a day and a minute later.
    for process in (beat, worker):
        process.stop()
        assert process.popen.returncode is not None, f"{process.name} did not stop"
    broker = redis.Redis.from_url(redis_url)
    broker.flushall()
    assert broker.dbsize() == 0
    ahead = timedelta(days=1, minutes=1)
    worker = celery("worker-tomorrow", "worker", "--concurrency", "2", ahead=ahead.total_seconds())
    celery("beat-tomorrow", "beat", ahead=ahead.total_seconds())

    (message,) = smtp_server.wait_for_messages(1, timeout=60)
    arrived = datetime.now(UTC)
    # Sweeps go on after the delivery: the email is not sent a second time.
    _wait_for_sweeps(worker, 4, after=len(_sweeps(worker)))
    assert len(smtp_server.messages) == 1

    assert message.rcpt_tos == ["tomorrow@example.com"]
    row = _row(app, email_id)
    assert (row.status, row.attempts) == ("sent", 1)
    assert message.message_id == row.message_id
    assert row.sent_at is not None and row.sent_at >= row.send_at
    # sent_at comes from the worker's clock, a day and a minute ahead of the real one.
    shift = row.sent_at - _naive_utc(arrived)
    assert ahead - timedelta(seconds=10) < shift < ahead + timedelta(seconds=5), shift
    assert _date_header(message) == send_at.replace(microsecond=0)


BULK = 2_000


def _position(smtp_server: SMTPServer, recipient: str) -> int | None:
    """How many messages the server had received before the first one to `recipient`."""
    for position, message in enumerate(list(smtp_server.messages)):
        if message.rcpt_tos == [recipient]:
            return position
    return None


def _unsent(app: Flask) -> int:
    """How many emails of the outbox are not sent yet: the backlog waits in the database, and
    Redis holds only what the workers are being fed (worker/tasks.py sweep_outbox)."""
    with app.app_context():
        count = db.session.scalar(
            db.select(db.func.count()).select_from(Email).where(Email.status != "sent")
        )
        db.session.rollback()
        return count


def test_a_high_priority_email_overtakes_a_backlog_of_2000_bulk_ones(
    app: Flask, redis_url: str, smtp_server: SMTPServer
) -> None:
    broker = redis.Redis.from_url(redis_url)
    with app.app_context():
        for n in range(BULK):
            send_email(f"reader{n}@example.com", f"Digest {n}", "mail/test_email", priority="bulk")
        db.session.commit()  # bulk: not published, but a sweep is asked for (flasky.high)
    assert broker.llen("flasky.bulk") == 0 and broker.llen("flasky.high") == 1

    concurrency = 4
    with worker_in_thread(app, concurrency):
        # The worker is busy with the backlog when a password reset comes in.
        smtp_server.wait_for_messages(20, timeout=30)
        _queue(app, "urgent@example.com", "Reset your password", "mail/test_email", priority="high")
        bulk_when_queued = len(smtp_server.messages)

        def high_arrived() -> tuple[int] | None:
            position = _position(smtp_server, "urgent@example.com")
            return None if position is None else (position,)

        (position,) = wait_until(high_arrived, 30, "the high-priority email", interval=0.01)
        backlog = _unsent(app)

    assert position < BULK // 4, f"{position} bulk emails arrived before the high-priority one"
    assert backlog >= BULK // 2, f"only {backlog} bulk emails were still waiting"
    # It waited only for what the worker had already taken from the queue (at most one batch
    # per Celery thread), not for the backlog.
    behind = position - bulk_when_queued
    batch = app.config["FLASKY_BATCH_SIZE"]
    assert behind <= concurrency * batch, (
        f"{behind} bulk emails arrived between its queueing and its delivery"
    )
