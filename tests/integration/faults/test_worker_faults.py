"""Scenarios 1 and 8: worker processes killed (SIGKILL) or stopped by a deploy (SIGTERM)."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from devtools.proc import children_of, live_children_of
from devtools.waiting import wait_until
from tests.integration.faults.figures import count, record
from tests.integration.faults.stack import Stack
from tests.integration.faults.traffic import Batch
from web.models import EmailStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BATCH = 300


def test_sigkill_of_one_worker_child_mid_batch(stack: Stack) -> None:
    """Three times, a prefork child dies by SIGKILL mid-task; the pool replaces it."""
    _, worker, _ = stack.start_all()
    batch = Batch(stack.app, stack.web_port, BATCH, prefix="child-kill").start()
    kills = 0
    pool_size = len(live_children_of(worker.popen.pid))
    for delivered in (BATCH // 5, 2 * BATCH // 5, 3 * BATCH // 5):
        stack.wait_for_deliveries(delivered)
        victim = random.choice(live_children_of(worker.popen.pid))
        os.kill(victim, signal.SIGKILL)
        kills += 1
        # Replaced before the next kill, so that each kill takes a live pool process.
        wait_until(
            lambda victim=victim: (
                victim not in live_children_of(worker.popen.pid)
                and len(live_children_of(worker.popen.pid)) >= pool_size
            ),
            30,
            f"the pool to replace process {victim}",
        )
    fault_end = time.monotonic()
    batch.finish()
    drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    record(
        "1a",
        "SIGKILL one worker child, 3 times, mid-batch",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=f"{kills} pool processes killed; at most {kills} duplicates allowed",
        processes_killed=kills,
        web_posts=batch.web_posts,
        web_failures=batch.web_failures,
    )
    assert batch.committed == outcome.sent == BATCH
    assert batch.web_failures == []
    outcome.assert_every_email_delivered()
    assert outcome.duplicated <= kills, outcome
    wait_until(
        lambda: worker.output().count("exited with 'signal 9 (SIGKILL)'") >= kills,
        15,
        f"the worker's log to report {kills} pool processes killed",
    )


def test_sigkill_of_the_whole_worker_mid_batch_then_restart(stack: Stack) -> None:
    """The main process and its children die at once; a new worker takes over."""
    _, worker, _ = stack.start_all()
    batch = Batch(stack.app, stack.web_port, BATCH, prefix="worker-kill").start()
    stack.wait_for_deliveries(BATCH // 3)
    killed = 1 + len(children_of(worker.popen.pid))
    worker.signal(signal.SIGKILL)  # the whole process group
    worker.popen.wait(timeout=10)
    stack.start_worker()
    fault_end = time.monotonic()
    batch.finish()
    drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    record(
        "1b",
        "SIGKILL the whole worker mid-batch, then restart it",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=f"main process and {killed - 1} pool processes killed; drain from the restart",
        processes_killed=killed,
        web_posts=batch.web_posts,
        web_failures=batch.web_failures,
    )
    assert batch.committed == outcome.sent == BATCH
    assert batch.web_failures == []
    outcome.assert_every_email_delivered()
    # Only a pool process can be between a 250 and its commit: at most one each.
    assert outcome.duplicated <= killed - 1, outcome


def test_sigterm_lets_in_flight_sends_finish(stack: Stack) -> None:
    """A deploy: SIGTERM to the worker's main process (as docker stop and Kubernetes send)."""
    total = 60
    stack.smtp.delay_per_message = 0.3  # sends are in flight when the signal arrives
    _, worker, _ = stack.start_all()
    batch = Batch(stack.app, stack.web_port, total, prefix="deploy").start()
    stack.wait_for_deliveries(total // 4)
    signalled = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    worker.popen.wait(timeout=15)
    stopped_after = time.monotonic() - signalled
    in_flight_left = [row for row in stack.outbox() if row.status == EmailStatus.SENDING]
    received_at_stop = stack.received()
    stack.start_worker()
    fault_end = time.monotonic()
    batch.finish()
    drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    record(
        "8",
        "SIGTERM to the worker mid-batch (a deploy), then restart it",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=(
            f"0.3 s per send; worker exited {stopped_after:.1f} s after SIGTERM with "
            f"{len(in_flight_left)} rows left `sending`; drain from the restart"
        ),
        worker_stopped_after_seconds=round(stopped_after, 2),
        rows_left_sending=len(in_flight_left),
        delivered_before_stop=sum(received_at_stop.values()),
        web_posts=batch.web_posts,
        web_failures=batch.web_failures,
    )
    assert in_flight_left == [], "a send in flight at SIGTERM did not finish and record"
    assert worker.popen.returncode == 0, worker.output()[-3000:]
    assert batch.committed == outcome.sent == total
    outcome.assert_every_email_delivered()
    assert outcome.duplicated == 0, outcome
