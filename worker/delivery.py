"""Delivering a claimed batch: each email built, sent and recorded on its own, several at once.

One Celery message carries a batch of ids (one claim for all of them); the emails themselves
still go one by one, each over an SMTP session of this process's pool of
`FLASKY_SMTP_CONNECTIONS` threads (one session per thread, kept open between emails), so that a
slow relay is waited for in parallel. Each email's outcome is committed as soon as its server
has answered, before its session carries another message: a crash can leave at most the emails
in flight unrecorded (each one the "." window of the delivery promise), never a whole batch.
The sending threads' accepted emails are committed together, by one recording thread.

Every send of a batch ends before one deadline, inside the task's soft time limit; an email
whose turn comes after the deadline is not attempted at all and is given back to the outbox.

The sending threads take high-priority emails first, then normal, then bulk, each in the order
its batch came: a password reset waits for the sends already under way, not for the bulk
batches the other Celery threads hold.
"""

from __future__ import annotations

import functools
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask

from web.clock import utcnow
from web.outbox.priority import Priority
from worker import claims
from worker.message import build_message, message_bytes
from worker.smtp import DeliveryError, SMTPSettings, classify, connection_for


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed email: sent, failed (with a classified error), or, with
    neither, not attempted because the batch's deadline had passed."""

    email: claims.ClaimedEmail
    reply: str | None = None
    error: DeliveryError | None = None
    attempt: claims.Attempt | None = None  # when it was made, for the attempt log

    @property
    def attempted(self) -> bool:
        return self.reply is not None or self.error is not None


def deliver_all(
    app: Flask,
    emails: list[claims.ClaimedEmail],
    settings: SMTPSettings,
    *,
    deadline: float,
    connections: int,
    priority: str,
) -> list[Outcome]:
    """Send `emails` (claimed) before `deadline` (time.monotonic()), recording each sent one
    as it goes; return every outcome, in the order of `emails`.

    With one connection, or one email, the task's own thread sends (and keeps its own session);
    otherwise the process's `connections` sending threads do, `priority` deciding the turn.
    """
    if connections == 1 or len(emails) == 1:
        return [_deliver_one(app, email, settings, deadline) for email in emails]
    senders = _per_process(_Senders, connections)
    futures = [
        senders.submit(priority, functools.partial(_deliver_one, app, email, settings, deadline))
        for email in emails
    ]
    return [future.result() for future in futures]


def _deliver_one(
    app: Flask, email: claims.ClaimedEmail, settings: SMTPSettings, deadline: float
) -> Outcome:
    started = time.monotonic()
    budget = deadline - started
    if budget <= 0:
        return Outcome(email)
    started_at = utcnow()

    def attempt() -> claims.Attempt:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return claims.Attempt(started_at, elapsed_ms, claims.this_worker())

    with app.app_context():
        try:
            attachments = claims.attachments_of(email.id) if email.attachment_count else []
            message = build_message(email, attachments)
            report = connection_for(settings).send(
                envelope_from=message.sender,
                recipients=email.envelope_recipients,
                raw=message_bytes(message),
                budget=budget,
            )
        except Exception as exc:  # every failure is recorded on the row, none is lost
            return Outcome(email, error=classify(exc), attempt=attempt())
    _per_process(_Recorder).record(
        app, claims.Sent(email.id, email.attempts, report.reply, report.refused, attempt())
    )
    return Outcome(email, reply=report.reply)


_RANK = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.BULK: 2}


class _Senders:
    """A fixed set of threads that run the sends they are given, highest priority first."""

    def __init__(self, size: int) -> None:
        self._work: queue.PriorityQueue[tuple[int, int, Callable[[], None]]] = queue.PriorityQueue()
        self._order = itertools.count()
        for number in range(size):
            name = f"smtp-{number}"
            threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, priority: str, send: Callable[[], Outcome]) -> Future[Outcome]:
        future: Future[Outcome] = Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(send())
                except BaseException as exc:  # handed to the task, which re-raises it
                    future.set_exception(exc)

        self._work.put((_RANK[Priority(priority)], next(self._order), run))
        return future

    def _run(self) -> None:
        while True:
            _, _, run = self._work.get()
            run()


class _Recorder:
    """One thread that records the accepted emails of every sending thread: what arrives while
    a commit runs goes into the next one (one UPDATE round trip and one COMMIT for several
    emails; one each was the largest part of a sending thread's CPU). A sending thread waits
    for its email's commit before it sends another, so a crash still leaves at most the
    emails in flight unrecorded, and a failed commit reaches the task as before."""

    def __init__(self) -> None:
        self._pending: queue.SimpleQueue[tuple[Flask, claims.Sent, Future[None]]]
        self._pending = queue.SimpleQueue()
        threading.Thread(target=self._run, name="outcomes", daemon=True).start()

    def record(self, app: Flask, sent: claims.Sent) -> None:
        done: Future[None] = Future()
        self._pending.put((app, sent, done))
        done.result()

    def _run(self) -> None:
        while True:
            waiting = [self._pending.get()]
            while not self._pending.empty():
                waiting.append(self._pending.get())
            by_app: dict[Flask, list[tuple[claims.Sent, Future[None]]]] = {}
            for app, sent, done in waiting:  # a test process runs several apps
                by_app.setdefault(app, []).append((sent, done))
            for app, items in by_app.items():
                self._commit(app, items)

    @staticmethod
    def _commit(app: Flask, items: list[tuple[claims.Sent, Future[None]]]) -> None:
        try:
            with app.app_context():
                claims.mark_sent_many([sent for sent, _ in items])
        except BaseException as exc:  # handed to each sending thread, which fails its send
            for _, done in items:
                done.set_exception(exc)
        else:
            for _, done in items:
                done.set_result(None)


T = TypeVar("T")
_per_process_lock = threading.Lock()
_per_process_objects: dict[tuple[int, type], object] = {}  # a forked prefork child makes its own


def _per_process(kind: Callable[..., T], *args: object) -> T:
    """This process's one `kind(*args)` (the arguments of the first call count)."""
    key = (os.getpid(), kind)
    with _per_process_lock:
        found = _per_process_objects.get(key)
        if found is None:
            found = _per_process_objects[key] = kind(*args)
        return found  # type: ignore[return-value]
