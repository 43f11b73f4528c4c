"""Scenario 6: every PostgreSQL connection of the app's database terminated, three times.

Restarting the PostgreSQL server is not an option on a machine where other tests use it; killing
the backends is what a failover, a restart or a network cut looks like to the clients.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from flask import Flask
from sqlalchemy import text

from tests.forms import csrf_token
from tests.integration.conftest import ADMIN
from tests.integration.faults.figures import count, record
from tests.integration.faults.stack import Stack
from tests.integration.faults.traffic import Batch
from web import create_app
from web.extensions import db
from web.models import EmailStatus, utcnow
from web.outbox.api import send_email
from worker import claims

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BATCH = 300


def _terminate_connections(stack: Stack, pid: int | None = None) -> int:
    """pg_terminate_backend on every other connection to the scenario's database (or `pid`)."""
    url = stack.database.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND (%s::int IS NULL OR pid = %s)",
            (stack.database.name, pid, pid),
        ).fetchall()
    return len(rows)


def _app_without_pings(stack: Stack) -> Flask:
    """An app as production configures it: pooled connections are not checked before use."""
    return create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=stack.database.url,
        CELERY={"broker_url": stack.redis.url},
        FLASKY_ADMIN=ADMIN,
    )


def _kill_pooled_connection(stack: Stack) -> None:
    """Terminate the connection that the app's session will take from the pool next."""
    pid = db.session.scalar(text("SELECT pg_backend_pid()"))
    db.session.commit()  # back to the pool, alive as far as the pool knows
    assert _terminate_connections(stack, pid) == 1


def test_a_connection_lost_between_the_send_and_its_record_is_tried_again(stack: Stack) -> None:
    """The step that caused scenario 6's duplicates, made to happen every time."""
    app = _app_without_pings(stack)
    with app.app_context():
        email_id = send_email(ADMIN, "Lost connection", "mail/new_user", name="Olga")
        db.session.commit()
        claimed = claims.claim(email_id, lease_seconds=5, max_attempts=3)
        assert claimed is not None
        _kill_pooled_connection(stack)  # the SMTP server has answered 250 meanwhile
        assert claims.mark_sent(
            claimed.id, claimed.attempts, "250 OK", {}, claims.Attempt(utcnow(), 5, "test")
        )
        db.session.remove()
    (row,) = stack.outbox()
    assert row.status == EmailStatus.SENT


def test_the_form_survives_a_lost_connection(stack: Stack) -> None:
    app = _app_without_pings(stack)
    client = app.test_client()
    token = csrf_token(client)
    with app.app_context():
        _kill_pooled_connection(stack)
    response = client.post("/", data={"name": "Pavel", "csrf_token": token})
    assert response.status_code == 302
    assert [row.status for row in stack.outbox()] == [EmailStatus.QUEUED]


def test_postgres_connections_terminated_mid_batch(stack: Stack) -> None:
    _, worker, beat = stack.start_all()
    batch = Batch(stack.app, stack.web_port, BATCH, prefix="pg-kill").start()
    terminated = []
    for delivered in (BATCH // 5, 2 * BATCH // 5, 3 * BATCH // 5):
        stack.wait_for_deliveries(delivered)
        terminated.append(_terminate_connections(stack))
    fault_end = time.monotonic()
    batch.finish()
    drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    record(
        "6",
        "PostgreSQL connections terminated, 3 times, mid-batch",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=(
            f"{sum(terminated)} connections terminated; {len(batch.web_failures)} POSTs failed"
        ),
        connections_terminated=terminated,
        web_posts=batch.web_posts,
        web_failures=batch.web_failures,
    )
    assert all(terminated), "no connection was terminated: the fault did not happen"
    assert worker.popen.poll() is None and beat.popen.poll() is None
    assert batch.web_failures == [], "a POST failed on a dead database connection"
    assert batch.committed == outcome.sent == BATCH
    outcome.assert_every_email_delivered()
    assert outcome.duplicated == 0, outcome
