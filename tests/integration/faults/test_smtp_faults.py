"""Scenarios 4 and 5: the SMTP server down for 30 s, hanging, or losing its reply after ".".

Scenarios 5 take the batch through the web form and in-process sends too, but need no 300
emails: the faults are per connection, and 100 emails keep both pool processes busy.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import pytest

from tests.integration.faults.figures import count, record
from tests.integration.faults.stack import Stack
from tests.integration.faults.traffic import Batch
from web.models import EmailStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow]

OUTAGE_SECONDS = 30.0  # the number


def test_smtp_server_down_for_30_seconds_mid_batch(stack: Stack) -> None:
    total = 300
    _, worker, _ = stack.start_all()
    batch = Batch(stack.app, stack.web_port, total, prefix="smtp-down").start()
    stack.wait_for_deliveries(total // 3)
    stack.smtp.stop()  # refuses connections, drops the open ones
    time.sleep(OUTAGE_SECONDS - 5)
    during = stack.outbox()
    time.sleep(5)
    stack.smtp.start()  # same port
    fault_end = time.monotonic()
    batch.finish()
    drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    rows = stack.outbox()
    errors_during = Counter(
        (row.last_error or "").split(":")[0] for row in during if row.status == "retrying"
    )  # the part of the reason before the first colon, e.g. "connection to 127.0.0.1"
    record(
        "4",
        "SMTP server down for 30 s mid-batch",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=(
            f"{sum(1 for row in rows if row.attempts > 1)} emails retried, up to "
            f"{outcome.max_attempts} attempts; none failed"
        ),
        outage_seconds=OUTAGE_SECONDS,
        emails_retried=sum(1 for row in rows if row.attempts > 1),
        attempts_total=sum(row.attempts for row in rows),
        statuses_during_outage=dict(Counter(row.status for row in during)),
        last_errors_during_outage=dict(errors_during),
        web_posts=batch.web_posts,
        web_failures=batch.web_failures,
    )
    assert batch.committed == outcome.sent == total
    assert batch.web_failures == []
    outcome.assert_every_email_delivered()
    assert outcome.duplicated == 0, outcome
    refused = f"connection to {stack.smtp.host}"
    assert errors_during.get(refused, 0) > 0, errors_during
    assert outcome.max_attempts > 2, "the outage should have cost retries"
    assert not any(row.status == EmailStatus.FAILED for row in during)
    assert "Hard time limit" not in worker.output()


class _ClaimWatch:
    """Samples, every 0.1 s, how long the oldest `sending` row has been held."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _ClaimWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.longest = max(self.longest, self.stack.longest_claim())


def test_smtp_server_that_hangs(stack: Stack) -> None:
    """It accepts connections and never answers: at the greeting, and on open connections."""
    total, hangs = 100, 6
    _, worker, _ = stack.start_all()
    time_limit = float(stack.settings["CELERY_TASK_TIME_LIMIT"])
    batch = Batch(stack.app, stack.web_port, total, prefix="smtp-hang").start()
    stack.wait_for_deliveries(total // 4)
    with _ClaimWatch(stack) as watch:
        stack.smtp.hang_at("mail", times=hangs)  # connections the workers keep open
        stack.smtp.hang_at("greeting", times=hangs)  # and the new ones they open next
        stack.smtp.hang_at("eom", times=hangs)  # the whole message sent, no reply
        fault_end = time.monotonic()
        batch.finish()
        drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    log = worker.output()
    record(
        "5a",
        "SMTP server hangs (greeting, MAIL, after the final '.')",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=(
            f"{3 * hangs} hung replies; longest claim {watch.longest:.1f} s "
            f"(time limit {time_limit:.0f} s)"
        ),
        hangs=3 * hangs,
        longest_claim_seconds=round(watch.longest, 2),
        task_time_limit_seconds=time_limit,
        timeouts_recorded=len(re.findall(r"will be retried in .*timed out", log)),
    )
    assert batch.committed == outcome.sent == total
    outcome.assert_every_email_delivered()
    assert outcome.duplicated == 0, outcome
    assert watch.longest < time_limit, f"a row stayed claimed {watch.longest:.1f}s"
    assert "Hard time limit" not in log and "SoftTimeLimitExceeded" not in log
    assert outcome.max_attempts >= 2


def test_smtp_server_drops_the_connection_after_the_final_dot(stack: Stack) -> None:
    """The message was taken, the "250" never arrived: the one duplicate the promise allows."""
    total, drops = 100, 5
    stack.start_all()
    batch = Batch(stack.app, stack.web_port, total, prefix="smtp-drop").start()
    stack.wait_for_deliveries(total // 4)
    stack.smtp.drop_reply_after_storing(drops)
    fault_end = time.monotonic()
    batch.finish()
    drain = stack.wait_drained() - fault_end
    outcome = count(stack)
    copies = Counter(m.message_id for m in stack.smtp.messages)
    record(
        "5b",
        "SMTP server drops the connection after '.' without replying",
        outcome,
        drain_seconds=drain,
        stack=stack,
        detail=(
            f"{stack.smtp.dropped_replies} replies lost after the message was taken; "
            "each duplicate has its original's Message-ID"
        ),
        replies_dropped=stack.smtp.dropped_replies,
    )
    assert stack.smtp.dropped_replies == drops
    assert batch.committed == outcome.sent == total
    outcome.assert_every_email_delivered()
    assert outcome.duplicated <= drops, outcome
    assert max(copies.values()) <= 2, "one email arrived three times"
    for message_id in outcome.duplicate_ids:
        first, second = (m.parsed() for m in stack.smtp.messages if m.message_id == message_id)
        for header in ("Message-ID", "Date", "Subject", "From", "To"):
            assert first[header] == second[header], (message_id, header)
