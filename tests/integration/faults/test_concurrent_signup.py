"""Scenario 7: twenty browsers post the same new name at the same moment, five times over."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from tests.integration.faults.figures import count, record
from tests.integration.faults.stack import Stack
from tests.integration.faults.traffic import FormClient
from web.extensions import db
from web.models import User

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CLIENTS = 20
ROUNDS = 5


def _race(stack: Stack, name: str) -> list[int]:
    """Every client gets its own session and token first; a barrier releases the POSTs."""
    clients = [FormClient(stack.web_port) for _ in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS)

    def post(client: FormClient) -> int:
        token = client.csrf_token()
        barrier.wait(timeout=30)
        status, _ = client.post_name(name, token)
        return status

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(post, clients))


def test_twenty_clients_post_the_same_new_name_at_once(stack: Stack) -> None:
    stack.start_all()
    started = time.monotonic()
    statuses = [status for i in range(ROUNDS) for status in _race(stack, f"Simultaneous {i}")]
    drain = stack.wait_drained() - started
    outcome = count(stack)
    with stack.app.app_context():
        users = db.session.execute(
            select(User.username, func.count()).group_by(User.username)
        ).all()
    record(
        "7",
        f"{CLIENTS} clients post the same new name at once ({ROUNDS} rounds)",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=f"{len(statuses)} POSTs, {len(users)} users stored; drain from the first POST",
        posts=len(statuses),
        users=len(users),
    )
    assert statuses == [302] * CLIENTS * ROUNDS
    assert sorted(users) == [(f"Simultaneous {i}", 1) for i in range(ROUNDS)]
    assert outcome.sent == ROUNDS, "one email per new name"
    outcome.assert_every_email_delivered()
    assert outcome.duplicated == 0, outcome
