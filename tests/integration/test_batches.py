"""Batched delivery: one Celery message, one claim for many emails, each email its own outcome.

Every test runs on SQLite and on PostgreSQL, against a real worker and the aiosmtpd server.
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from pathlib import Path

import redis
from flask import Flask

from devtools.processes import Process
from devtools.smtp_server import SMTPServer
from devtools.waiting import wait_until
from tests.integration.conftest import (
    ADMIN,
    emails,
    subprocess_env,
    wait_for_status,
    worker_in_thread,
)
from tests.integration.queued import queued_ids
from web.extensions import db
from web.outbox.api import publish, send_email


def _queue(app: Flask, recipients: list[str | list[str]], **options: object) -> list[int]:
    """One email per entry of `recipients`, all in one transaction (so: one message)."""
    with app.app_context():
        ids = [
            send_email(to, f"Batch {n}", "mail/test_email", **options)
            for n, to in enumerate(recipients)
        ]
        db.session.commit()
    return ids


def test_one_transaction_is_one_message_and_one_claim(
    app: Flask, redis_url: str, smtp_server: SMTPServer
) -> None:
    ids = _queue(app, [f"reader{n}@example.com" for n in range(150)])
    broker = redis.Redis.from_url(redis_url)
    assert broker.llen("flasky.normal") == 2  # FLASKY_BATCH_SIZE is 100
    assert sorted(queued_ids(broker, "flasky.normal")) == ids
    with worker_in_thread(app):
        wait_for_status(app, "sent", count=150, timeout=60)
    assert len(smtp_server.messages) == 150
    assert all(row.attempts == 1 for row in emails(app))


def test_workers_racing_for_the_same_batch_send_each_email_once(
    app: Flask, smtp_server: SMTPServer
) -> None:
    """The same batch published three times, taken by three threads at once."""
    ids = _queue(app, [f"reader{n}@example.com" for n in range(60)])
    with app.app_context():
        assert publish([(email_id, "normal") for email_id in ids] * 2) == []
    with worker_in_thread(app, concurrency=3):
        wait_for_status(app, "sent", count=60, timeout=60)
    counts = Counter(message.message_id for message in smtp_server.messages)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert all(row.attempts == 1 for row in emails(app))


def test_each_email_of_a_batch_gets_its_own_outcome(app: Flask, smtp_server: SMTPServer) -> None:
    """One message: a greylisted recipient (451 at RCPT), an unknown one (550), a connection
    dropped at the end of DATA, a plain delivery, and a partial refusal (To accepted, Cc
    refused). The emails after the dropped connection still go out, on a new one."""
    app.config["FLASKY_SMTP_CONNECTIONS"] = 1  # in id order, so "the middle" is the third
    app.config["FLASKY_MAX_ATTEMPTS"] = 3
    smtp_server.refuse_recipient("grey@example.com", "451 4.7.1 Greylisted, try again later")
    smtp_server.refuse_recipient("gone@example.com", "550 5.1.1 No such user")
    smtp_server.refuse_recipient("gone-cc@example.com", "550 5.1.1 No such user")
    smtp_server.hang_up_at("eom", times=1)  # the first message to reach the end of DATA
    grey, gone, dropped = _queue(
        app, ["grey@example.com", "gone@example.com", "dropped@example.com"]
    )
    (plain,) = _queue(app, ["plain@example.com"])
    (partial,) = _queue(app, ["partial@example.com"], cc="gone-cc@example.com")
    with app.app_context():  # one message for all five
        redis.Redis.from_url(app.config["CELERY"]["broker_url"]).flushdb()
        assert publish([(i, "normal") for i in (grey, gone, dropped, plain, partial)]) == []
    with worker_in_thread(app):
        wait_until(lambda: _settled(app, 5), 60, "every email to reach its outcome")
    rows = {row.id: row for row in emails(app)}
    assert (rows[plain].status, rows[plain].attempts) == ("sent", 1)
    assert (rows[partial].status, rows[partial].attempts) == ("sent", 1)
    assert "gone-cc@example.com" in rows[partial].refused_recipients
    assert (rows[dropped].status, rows[dropped].attempts) == ("sent", 2)
    assert (rows[gone].status, rows[gone].attempts) == ("failed", 1)
    assert "550 5.1.1" in rows[gone].last_error
    assert (rows[grey].status, rows[grey].attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in rows[grey].last_error
    delivered = Counter(message.rcpt_tos[0] for message in smtp_server.messages)
    assert delivered == {"plain@example.com": 1, "partial@example.com": 1, "dropped@example.com": 1}


def _settled(app: Flask, count: int) -> bool:
    finished = [row for row in emails(app) if row.status in ("sent", "failed")]
    return len(finished) == count


def test_a_worker_killed_mid_batch_loses_nothing(
    app: Flask, database_url: str, redis_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """SIGKILL while a batch of 200 is being sent: once the lease has expired the sweeper
    publishes the rest, and every email arrives; a second copy only of what was in flight
    (the "." window of each open connection), with the same Message-ID."""
    smtp_server.delay_per_message = 0.02
    env = subprocess_env(database_url, redis_url, smtp_server.port, tmp_path)
    env.update(  # a short chain of waits, so that the lease expires within the test
        MAIL_TIMEOUT="1",
        MAIL_DATA_TIMEOUT="1.5",
        CELERY_TASK_SOFT_TIME_LIMIT="3",
        CELERY_TASK_TIME_LIMIT="4",
        FLASKY_LEASE_SECONDS="5",
        FLASKY_MAX_COUNTDOWN="5",
        CELERY_VISIBILITY_TIMEOUT="30",
        FLASKY_SMTP_CONNECTIONS="4",
    )
    celery = [sys.executable, "-m", "celery", "-A", "worker"]
    worker = Process("worker", [*celery, "worker", "--pool", "threads", "-c", "2"], env, tmp_path)
    beat = Process("beat", [*celery, "beat"], env, tmp_path)
    replacement: Process | None = None
    try:
        _queue(app, [f"reader{n}@example.com" for n in range(200)])
        smtp_server.wait_for_messages(40, timeout=60)
        worker.signal(signal.SIGKILL)
        worker.popen.wait(timeout=10)
        killed_at = len(smtp_server.messages)
        assert killed_at < 200, "the batch was over before the kill"
        replacement = Process("worker-2", [*celery, "worker", "-c", "2"], env, tmp_path)
        wait_for_status(app, "sent", count=200, timeout=90)
    finally:
        for process in (replacement, beat, worker):
            if process is not None:
                process.stop()
    counts = Counter(message.message_id for message in smtp_server.messages)
    assert set(counts) == {row.message_id for row in emails(app)}
    duplicates = sum(counts.values()) - len(counts)
    assert duplicates <= 4, f"{duplicates} second copies, more than the connections in flight"
    assert ADMIN not in worker.output()
