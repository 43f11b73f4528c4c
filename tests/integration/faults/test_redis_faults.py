"""Scenarios 2 and 3: Redis, which holds nothing the database does not, lost or down."""

from __future__ import annotations

import re
import threading
import time

import pytest

from devtools.processes import Process
from tests.integration.faults.figures import count, record
from tests.integration.faults.stack import Stack
from tests.integration.faults.traffic import Batch, FormClient

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BATCH = 300
_REPUBLISHED = re.compile(r"sweeper published (\d+) emails")


# kombu 5.7's Redis transport can crash the worker when the broker connection drops while it
# restores unacknowledged messages ("Unrecoverable error: AttributeError: 'NoneType' object has
# no attribute 'hostname'"); the worker then exits, and production relies on the supervisor
# (docker-compose.yml: `restart: unless-stopped`) to start it again. See docs/reliability.md.
_KOMBU_CRASH = "Unrecoverable error: AttributeError(\"'NoneType' object has no attribute"


class Supervisor:
    """Restarts the worker when it exits, as `restart: unless-stopped` does; counts restarts."""

    def __init__(self, stack: Stack, worker: Process) -> None:
        self.stack = stack
        self.workers = [worker]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(60)

    @property
    def restarts(self) -> int:
        return len(self.workers) - 1

    def output(self) -> str:
        return "".join(worker.output() for worker in self.workers)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            if self.workers[-1].popen.poll() is not None:
                self.workers.append(self.stack.start_worker())

    def assert_only_known_crashes(self) -> None:
        for worker in self.workers[:-1]:
            assert _KOMBU_CRASH in worker.output(), worker.output()[-3000:]


def _republished(log: str) -> int:
    return sum(int(n) for n in _REPUBLISHED.findall(log))


def test_redis_killed_and_restarted_empty_mid_batch(stack: Stack) -> None:
    _, worker, _ = stack.start_all()
    batch = Batch(stack.app, stack.web_port, BATCH, prefix="redis-restart").start()
    stack.wait_for_deliveries(BATCH // 3)
    republished_before = _republished(worker.output())
    with Supervisor(stack, worker) as supervisor:
        stack.redis.stop()  # SIGKILL and no persistence: every message it held is gone
        time.sleep(1.0)
        stack.redis.start()  # same port, empty
        fault_end = time.monotonic()
        batch.finish()
        drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    republished = _republished(supervisor.output()) - republished_before
    record(
        "2",
        "Redis killed and restarted empty mid-batch",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=(
            f"down 1 s; the sweeper re-published {republished} emails; "
            f"worker restarted after a crash: {supervisor.restarts}"
        ),
        republished_by_sweeper=republished,
        worker_restarts=supervisor.restarts,
        web_posts=batch.web_posts,
        web_failures=batch.web_failures,
    )
    assert batch.committed == outcome.sent == BATCH
    assert batch.web_failures == []
    outcome.assert_every_email_delivered()
    assert outcome.duplicated == 0, outcome
    assert republished > 0, "the sweeper re-published nothing: what did Redis lose?"
    supervisor.assert_only_known_crashes()


def test_redis_down_while_the_form_is_posted(stack: Stack) -> None:
    posts = 50
    _, worker, _ = stack.start_all()
    with Supervisor(stack, worker) as supervisor:
        stack.redis.stop()
        client = FormClient(stack.web_port)
        results = [client.post_name(f"offline-{i}") for i in range(posts)]
        stack.redis.start()
        fault_end = time.monotonic()
        drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    statuses = sorted({status for status, _ in results})
    slowest = max(seconds for _, seconds in results)
    record(
        "3",
        "Redis down while the form is posted 50 times",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=(
            f"every POST answered {statuses}, the slowest in {slowest:.2f} s; "
            f"worker restarted after a crash: {supervisor.restarts}"
        ),
        post_statuses=statuses,
        worker_restarts=supervisor.restarts,
        slowest_post_seconds=round(slowest, 3),
    )
    assert statuses == [302], results
    assert slowest < 1.0, f"a POST took {slowest:.2f}s with Redis down"
    assert outcome.sent == posts
    outcome.assert_every_email_delivered()
    assert outcome.duplicated == 0, outcome
    supervisor.assert_only_known_crashes()
