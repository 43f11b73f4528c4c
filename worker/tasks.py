"""The Celery tasks: `deliver_email(email_id)` delivers one outbox row (on the wire:
`flasky.send_email`, the task the web publishes); `sweep_outbox` re-publishes.

Only the email id crosses the broker: no addresses or bodies in Redis or in Flower.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from amqp.exceptions import ChannelError
from celery import Task, shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from flask import current_app
from kombu.transport.virtual import Channel
from redis.exceptions import LockError

from celeryconfig import SEND_EMAIL_TASK, SWEEP_OUTBOX_TASK
from web.outbox.api import publish_hold
from web.outbox.priority import Priority, queue_for
from worker import claims
from worker.message import build_message, message_bytes
from worker.smtp import DeliveryError, SMTPSettings, classify, close_all, connection_for

log = logging.getLogger(__name__)

SWEEP_LOCK = "flasky.sweep_outbox.lock"  # a Redis key, held while a sweep runs
SWEEP_BATCH_SIZE = 500
# At most this many batches per queue and sweep (a bound on its run time); the next sweep goes on.
SWEEP_MAX_BATCHES = 40


@shared_task(name=SEND_EMAIL_TASK, bind=True)
def deliver_email(self: Task, email_id: int) -> str:
    """Claim the row, send it over SMTP, record the outcome. Safe to run twice for one id."""
    config = current_app.config
    max_attempts = config["FLASKY_MAX_ATTEMPTS"]
    email = claims.claim(
        email_id, lease_seconds=config["FLASKY_LEASE_SECONDS"], max_attempts=max_attempts
    )
    task_id = self.request.id
    if email is None:
        log.info("email %s not claimed by task %s: already handled or held", email_id, task_id)
        return "skipped"
    log.info("email %s claimed by task %s (attempt %s)", email.id, task_id, email.attempts)
    try:
        attachments = claims.attachments_of(email.id) if email.attachment_count else []
        message = build_message(email, attachments)
        report = connection_for(SMTPSettings.from_config(config)).send(
            envelope_from=message.sender,
            recipients=email.envelope_recipients,
            raw=message_bytes(message),
            # Inside the soft time limit, which the threads pool does not enforce.
            budget=0.8 * config["CELERY"]["task_soft_time_limit"],
        )
    except Exception as exc:  # every failure is recorded on the row, none is lost
        return _record_failure(self, email, classify(exc), max_attempts)
    claims.mark_sent(email.id, email.attempts, report.reply, report.refused)
    log.info("email %s sent by task %s: %s", email.id, task_id, report.reply)
    return "sent"


def _record_failure(
    task: Task, email: claims.ClaimedEmail, error: DeliveryError, max_attempts: int
) -> str:
    task_id = task.request.id
    if not error.transient or email.attempts >= max_attempts:
        reason = error.reason
        if error.transient:
            reason = f"gave up after {email.attempts} attempts: {reason}"
        claims.mark_failed(email.id, email.attempts, reason)
        log.warning("email %s failed in task %s: %s", email.id, task_id, reason)
        return "failed"
    config = current_app.config
    delay = claims.backoff_delay(
        email.attempts, config["FLASKY_RETRY_BACKOFF_BASE"], config["FLASKY_RETRY_BACKOFF_CAP"]
    )
    claims.mark_retrying(email.id, email.attempts, delay, error.reason)
    log.warning(
        "email %s will be retried in %.1fs (task %s, attempt %s): %s",
        email.id,
        delay,
        task_id,
        email.attempts,
        error.reason,
    )
    if delay <= config["FLASKY_MAX_COUNTDOWN"]:
        # Short wait: a Celery retry. Longer waits are left to the sweeper, so that no ETA
        # message sits on the broker longer than FLASKY_MAX_COUNTDOWN.
        raise task.retry(countdown=delay, max_retries=None)
    return "retrying"


@shared_task(name=SWEEP_OUTBOX_TASK, bind=True)
def sweep_outbox(self: Task) -> int:
    """Publish what is due and what Redis may have lost: the database decides what is pending.

    For each priority, it tops the queue up to FLASKY_SWEEP_QUEUE_TARGET waiting messages, in
    batches, and marks each row it published. A marked row is not published again while its
    queue holds messages: its own message is among them (10,000 digests due at 8 a.m. are
    published as fast as the workers take them, each once). An empty queue holds no message
    for any row, so then the marks are ignored: a row still waiting was lost (Redis restarted
    empty, or the publish failed). Each queue is topped up on its own, so a long bulk queue
    never holds up a high-priority email.
    """
    config = current_app.config
    abandoned = claims.fail_abandoned(max_attempts=config["FLASKY_MAX_ATTEMPTS"])
    if abandoned:
        log.warning("sweeper marked %s emails failed: worker lost on their last attempt", abandoned)
    with self.app.connection_for_write() as connection:
        # One sweep at a time: two that both found a queue empty would publish the same rows.
        lock = connection.default_channel.client.lock(
            SWEEP_LOCK, timeout=config["CELERY"]["task_time_limit"], blocking=False
        )
        if not lock.acquire():
            log.info("sweep skipped: another sweep is running")
            return 0
        try:
            return sum(
                _top_up(connection.default_channel, priority, publish_hold(config))
                for priority in Priority
            )
        finally:
            with contextlib.suppress(LockError):  # held past its timeout: already released
                lock.release()


def _top_up(channel: Channel, priority: Priority, hold: timedelta) -> int:
    """Publish due rows of `priority` until its queue holds FLASKY_SWEEP_QUEUE_TARGET
    messages; return how many were published."""
    config = current_app.config
    queue = queue_for(priority)
    waiting = _waiting(channel, queue)
    honour_marks = waiting > 0
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
        for email_id in ids:
            deliver_email.apply_async((email_id,), queue=queue)
        # After publishing: if Redis refused, nothing is marked and the next sweep tries again.
        claims.mark_published(ids, hold=hold)
        if ids:
            log.info("sweeper published %s emails on %s: %s", len(ids), queue, ids[:20])
        published += len(ids)
        waiting += len(ids)
        if len(ids) < room:
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
