"""The Celery tasks: `deliver_email(email_ids)` delivers a batch of outbox rows (on the wire:
`flasky.send_email`, the task the web publishes); `sweep_outbox` publishes what is due.

Only email ids cross the broker: no addresses or bodies in Redis or in Flower.
"""

from __future__ import annotations

import contextlib
import logging
import time

from amqp.exceptions import ChannelError
from celery import Task, shared_task
from celery.beat import Service
from celery.signals import beat_init, worker_process_shutdown, worker_shutdown
from flask import current_app
from kombu.transport.virtual import Channel
from redis.exceptions import LockError

from celeryconfig import SEND_EMAIL_TASK, SWEEP_OUTBOX_TASK
from web.config import SEND_BUDGET_SHARE
from web.outbox.api import publish, publish_hold
from web.outbox.priority import Priority, queue_for
from worker import claims
from worker.delivery import Outcome, deliver_all
from worker.retry_delay import retry_delay
from worker.smtp import SMTPSettings, close_all

log = logging.getLogger(__name__)

SWEEP_LOCK = "flasky.sweep_outbox.lock"  # a Redis key, held while a sweep or a feed runs
SWEEP_BATCH_SIZE = 500
# At most this many batches per queue and sweep (a bound on its run time); the next sweep goes on.
SWEEP_MAX_BATCHES = 40


class EmailsFailed(Exception):
    """Raised by a delivery task after recording that emails of its batch failed for good,
    so that the task ends as FAILURE in Flower, like its emails in the outbox. Declared in
    the task's `throws`: Celery then logs it as one INFO line, without a traceback, and it is
    not retried (the outbox has already decided)."""


@shared_task(name=SEND_EMAIL_TASK, bind=True, throws=(EmailsFailed,))
def deliver_email(self: Task, email_ids: int | list[int]) -> str:
    """Claim the rows (one statement), send each over SMTP, record each outcome. Safe to run
    twice for the same ids. A message from before batches carries one id, not a list.

    Ends as SUCCESS, as RETRY when some emails wait for a short backoff (the retry carries
    them alone), or as FAILURE (EmailsFailed) when none waits and some failed for good."""
    ids = [email_ids] if isinstance(email_ids, int) else list(email_ids)
    config = current_app.config
    max_attempts = config["FLASKY_MAX_ATTEMPTS"]
    emails = claims.claim_many(
        ids, lease_seconds=config["FLASKY_LEASE_SECONDS"], max_attempts=max_attempts
    )
    task_id = self.request.id
    if not emails:
        log.info("emails %s not claimed by task %s: already handled or held", ids, task_id)
        return "skipped"
    for email in emails:
        log.info("email %s claimed by task %s (attempt %s)", email.id, task_id, email.attempts)
    priority = _priority_of((self.request.delivery_info or {}).get("routing_key"))
    outcomes = deliver_all(
        current_app._get_current_object(),
        emails,
        SMTPSettings.from_config(config),
        # Inside the soft time limit, which the threads pool does not enforce.
        deadline=time.monotonic() + SEND_BUDGET_SHARE * config["CELERY"]["task_soft_time_limit"],
        connections=config["FLASKY_SMTP_CONNECTIONS"],
        priority=priority,
    )
    retries, failed = _record(task_id, outcomes, max_attempts)
    if priority == Priority.BULK:
        _feed(self, Priority.BULK)  # the bulk backlog waits in the database: take the next
    if retries:
        # Short waits: a Celery retry of those ids, once the longest has passed. Longer waits
        # are left to the sweeper, so that no ETA message sits on the broker longer than
        # FLASKY_MAX_COUNTDOWN.
        raise self.retry(args=[sorted(retries)], countdown=max(retries.values()), max_retries=None)
    if failed:
        detail = "; ".join(f"email {email_id}: {reason}" for email_id, reason in failed.items())
        raise EmailsFailed(f"{_summary(outcomes)}; failed: {detail}")
    return _summary(outcomes)


def _priority_of(queue: str | None) -> Priority:
    """The priority of the queue a message came from (normal if it was not one of ours)."""
    by_queue = {queue_for(priority): priority for priority in Priority}
    return by_queue.get(queue or "", Priority.NORMAL)


def _record(
    task_id: str, outcomes: list[Outcome], max_attempts: int
) -> tuple[dict[int, float], dict[int, str]]:
    """Log the sent ones (recorded as they went), record the failures, give back the emails
    not attempted; return {id: delay} of those to retry with a Celery countdown, and
    {id: reason} of those that failed for good."""
    config = current_app.config
    retries: dict[int, float] = {}
    failed: dict[int, str] = {}
    for outcome in outcomes:
        email, error = outcome.email, outcome.error
        if outcome.reply is not None:
            log.info("email %s sent by task %s: %s", email.id, task_id, outcome.reply)
        elif error is None:
            continue
        elif not error.transient or email.attempts >= max_attempts:
            reason = error.reason
            if error.transient:
                reason = f"gave up after {email.attempts} attempts: {reason}"
            failure = claims.Failure(reason, error.error_class)
            if claims.mark_failed(email.id, email.attempts, failure, outcome.attempt):
                failed[email.id] = reason
            log.warning("email %s failed in task %s: %s", email.id, task_id, reason)
        else:
            delay = retry_delay(error.reason, email.attempts, config)
            failure = claims.Failure(error.reason, error.error_class)
            claims.mark_retrying(email.id, email.attempts, delay, failure, outcome.attempt)
            log.warning(
                "email %s will be retried in %.1fs (task %s, attempt %s): %s",
                email.id,
                delay,
                task_id,
                email.attempts,
                error.reason,
            )
            if delay <= config["FLASKY_MAX_COUNTDOWN"]:
                retries[email.id] = delay
    skipped = [(o.email.id, o.email.attempts) for o in outcomes if not o.attempted]
    if skipped:
        claims.release(skipped)
        given_back = [email_id for email_id, _ in skipped]
        log.warning("emails %s given back by task %s: out of time", given_back, task_id)
    return retries, failed


def _summary(outcomes: list[Outcome]) -> str:
    sent = sum(o.reply is not None for o in outcomes)
    failed = sum(o.error is not None for o in outcomes)
    given_back = len(outcomes) - sent - failed
    return f"sent {sent}, not sent {failed}, given back {given_back}"


# No events of its own: a sweep runs every FLASKY_SWEEP_INTERVAL seconds and nearly always finds
# nothing to do; Flower would list each one. `_show_in_flower` reports the sweeps that acted.
@shared_task(name=SWEEP_OUTBOX_TASK, bind=True, send_events=False)
def sweep_outbox(self: Task) -> int:
    """Publish what is due and what Redis may have lost: the database decides what is pending.

    For each priority, it tops the queue up to FLASKY_SWEEP_QUEUE_TARGET emails (in messages
    of FLASKY_BATCH_SIZE ids) and marks each row it published. A marked row is not published
    again while its queue holds messages: its own message is among them (10,000 digests due
    at 8 a.m. are published as fast as the workers take them, each once). An empty queue holds
    no message for any row, so then the marks are ignored: a row still waiting was lost (Redis
    restarted empty, or the publish failed). Each queue is topped up on its own, so a long
    bulk queue never holds up a high-priority email. Bulk emails are never published at
    commit: the whole bulk backlog waits in the database, and workers top the bulk queue up
    as they take from it (`_feed`), so Redis holds what is in flight, not the backlog.
    """
    started = time.monotonic()
    config = current_app.config
    abandoned = claims.fail_abandoned(max_attempts=config["FLASKY_MAX_ATTEMPTS"])
    if abandoned:
        log.warning("sweeper marked %s emails failed: worker lost on their last attempt", abandoned)
    published = _top_up_alone(self, list(Priority))
    if published is None:
        log.info("sweep skipped: another sweep is running")
        published = 0
    if published or abandoned:
        result = f"published {published}, marked failed {abandoned}"
        _show_in_flower(self, result, time.monotonic() - started)
    return published


def _show_in_flower(task: Task, result: str, runtime: float) -> None:
    """Send, at its end, the events a worker sends for a task (received, started,
    succeeded), so that Flower lists this one run of a task that sends none of its own."""
    request = task.request
    task.send_event(
        "task-received",
        name=task.name,
        args="()",
        kwargs="{}",
        root_id=request.root_id,
        parent_id=request.parent_id,
        retries=request.retries,
        eta=None,
        expires=None,
    )
    task.send_event("task-started")
    task.send_event("task-succeeded", result=result, runtime=runtime)


def _feed(task: Task, priority: Priority) -> None:
    """Top `priority`'s queue up after taking a batch from it, unless a sweep is doing so."""
    _top_up_alone(task, [priority])


def _top_up_alone(task: Task, priorities: list[Priority]) -> int | None:
    """Top up these queues under the sweep lock; None if another sweep or feed holds it
    (two that both found a queue empty would publish the same rows)."""
    config = current_app.config
    with task.app.connection_for_write() as connection:
        channel = connection.default_channel
        lock = channel.client.lock(
            SWEEP_LOCK, timeout=config["CELERY"]["task_time_limit"], blocking=False
        )
        if not lock.acquire():
            return None
        try:
            return sum(_top_up(channel, priority) for priority in priorities)
        finally:
            with contextlib.suppress(LockError):  # held past its timeout: already released
                lock.release()


def _top_up(channel: Channel, priority: Priority) -> int:
    """Publish due rows of `priority` until its queue holds about FLASKY_SWEEP_QUEUE_TARGET
    emails; return how many were published."""
    config = current_app.config
    hold = publish_hold(config)
    queue = queue_for(priority)
    messages = _waiting(channel, queue)
    honour_marks = messages > 0
    waiting = messages * config["FLASKY_BATCH_SIZE"]  # at most: a message holds up to that
    published = last_id = 0
    for _ in range(SWEEP_MAX_BATCHES):
        room = min(SWEEP_BATCH_SIZE, config["FLASKY_SWEEP_QUEUE_TARGET"] - waiting)
        if room <= 0:
            break
        due = claims.due_for_sweep(
            grace_seconds=config["FLASKY_SWEEP_GRACE"],
            max_attempts=config["FLASKY_MAX_ATTEMPTS"],
            limit=room,
            after_id=last_id,
            priority=priority,
            honour_marks=honour_marks,
        )
        ids = [email_id for email_id, _ in due]
        unpublished = {email_id for email_id, _ in publish((i, priority) for i in ids)}
        sent = [email_id for email_id in ids if email_id not in unpublished]
        # After publishing: what Redis refused is not marked, and the next sweep tries again.
        claims.mark_published(sent, hold=hold)
        if sent:
            log.info("sweeper published %s emails on %s: %s", len(sent), queue, sent[:20])
        published += len(sent)
        waiting += len(sent)
        if unpublished or len(ids) < room:
            break
        last_id = ids[-1]
    return published


def _waiting(channel: Channel, queue: str) -> int:
    """How many messages wait on `queue` (the Redis transport keeps no empty queue)."""
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:
        return 0


@worker_process_shutdown.connect  # each prefork child
@worker_shutdown.connect  # the main process (threads pool)
def _close_smtp_connections(**_: object) -> None:
    close_all()


@beat_init.connect
def _no_sent_events_from_beat(sender: Service, **_: object) -> None:
    """Beat publishes nothing but sweeps, and a sent event would put each one in Flower's task
    list (see sweep_outbox). `celery beat` runs on its own (dev.py, compose): the setting does
    not reach the workers' or the web's publishing."""
    sender.app.conf.task_send_sent_event = False
