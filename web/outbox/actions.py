"""What an operator may do to the outbox: retry a failed email, retry every failed email a
filter matches, cancel a scheduled email; each one recorded as an `AdminAction`.

Each action is one conditional UPDATE that re-checks, as it writes, what made the row eligible
(failed; queued and not yet due), so an action racing a worker or another operator changes a
row only if it still qualifies. The record is added to the same transaction, and nothing here
commits: the caller does, and a rollback forgets the change and its record together.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from web.extensions import db
from web.models import AdminAction, Email, EmailStatus, utcnow
from web.outbox.api import publish_after_commit, sweep_after_commit
from web.outbox.search import MAX_ID, EmailFilter, conditions

log = logging.getLogger(__name__)

RETRY = "retry"
BULK_RETRY = "bulk-retry"
CANCEL = "cancel"


def admin_actor() -> str:
    """Who acts from the dashboard: its one account."""
    return f"admin:{current_app.config['ADMIN_USERNAME']}"


def cli_actor() -> str:
    """Who acts from `flask outbox`: the user running it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry and no $USER
        user = f"uid {os.getuid()}"
    return f"cli:{user}"


def requeue(email_id: int, *, actor: str) -> bool:
    """Put a `failed` email back in the queue; False (and no change) for any other status.

    The row starts over: `queued`, attempts 0, due now. `last_error` is kept as the reason of
    the earlier failure until the next attempt replaces it. The email is published when the
    caller commits; if the broker is down then, the sweeper publishes it.
    """
    if not 0 < email_id <= MAX_ID:
        return False
    now = utcnow()
    statement = (
        update(Email)
        .where(Email.id == email_id, Email.status == EmailStatus.FAILED)
        .values(_starting_over(now))
        .returning(Email.priority)
        .execution_options(synchronize_session=False)
    )
    priority = db.session.scalar(statement)
    if priority is None:
        return False
    publish_after_commit(email_id, priority)
    _record(actor, RETRY, {"id": email_id}, 1)
    return True


def failed_only(email_filter: EmailFilter) -> EmailFilter:
    """The failed emails among those `email_filter` matches: what a bulk retry changes.

    Raises ValueError for a filter on another status (it matches no failed email)."""
    if email_filter.status not in (None, EmailStatus.FAILED):
        raise ValueError(f"only failed emails are retried, not {email_filter.status} ones")
    return replace(email_filter, status=EmailStatus.FAILED.value)


def requeue_failed(email_filter: EmailFilter, *, failed_before: datetime, actor: str) -> int:
    """Put back in the queue every email that `failed_only(email_filter)` matches and that was
    already failed at `failed_before` (when the operator was shown the count); return how many.

    The UPDATE applies the filter and both conditions itself, so a row retried, or failed
    anew, since the count was shown is left alone: the action never changes more rows than
    were confirmed.

    The rows are not published one by one: a filter can match 100,000 emails, and a message
    each (or a thousand of FLASKY_BATCH_SIZE ids) would put the whole backlog on Redis at once.
    They are left as the sweeper finds a row with no message on the way (queued, due now, no
    published mark), and a sweep is asked for at commit: it tops each priority's queue up to
    FLASKY_SWEEP_QUEUE_TARGET, and the workers feed it as they go, as for a bulk send.
    """
    retried = failed_only(email_filter)
    now = utcnow()
    statement = (
        update(Email)
        .where(*conditions(retried, now), Email.updated_at <= failed_before)
        .values(_starting_over(now))
        .execution_options(synchronize_session=False)
    )
    count = db.session.execute(statement).rowcount
    if count:
        sweep_after_commit()
        _record(actor, BULK_RETRY, retried.as_json(), count)
    return count


def cancel(email_id: int, *, actor: str) -> bool:
    """Cancel a scheduled email: one still `queued` whose `send_at` is ahead; False (and no
    change) for any other.

    One conditional UPDATE: a claim only takes a queued row once `send_at` has passed, and
    this only one before, so a cancel racing a claim cannot both win (on PostgreSQL the later
    UPDATE waits for the row and re-checks its status). Nothing sends a cancelled email: the
    claim and the sweeper take only queued, retrying and sending rows.
    """
    if not 0 < email_id <= MAX_ID:
        return False
    now = utcnow()
    statement = (
        update(Email)
        .where(Email.id == email_id, Email.status == EmailStatus.QUEUED, Email.send_at > now)
        .values(
            status=EmailStatus.CANCELLED,
            next_attempt_at=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if db.session.execute(statement).rowcount != 1:
        return False
    _record(actor, CANCEL, {"id": email_id}, 1)
    return True


def cancel_refusal(email_id: int) -> str | None:
    """Why `cancel(email_id)` changed nothing, for people; None when there is no such email."""
    if not 0 < email_id <= MAX_ID:
        return None
    row = db.session.execute(
        select(Email.status, Email.send_at).where(Email.id == email_id)
    ).one_or_none()
    if row is None:
        return None
    status, send_at = row
    if status == EmailStatus.QUEUED and send_at is not None:
        return f"Email {email_id} was due at {send_at:%Y-%m-%d %H:%M:%S} UTC: too late to cancel."
    return f"Email {email_id} is {status}, not scheduled: nothing to cancel."


def recent_actions(limit: int) -> list[AdminAction]:
    """The latest `limit` recorded actions, newest first."""
    statement = select(AdminAction).order_by(AdminAction.at.desc(), AdminAction.id.desc())
    return list(db.session.scalars(statement.limit(limit)))


def describe_target(target: Mapping[str, object]) -> str:
    """An action's target for people: "email 42", or its filter's description."""
    if "id" in target:
        return f"email {target['id']}"
    return EmailFilter(
        status=_text(target.get("status")),
        priority=_text(target.get("priority")),
        query=_text(target.get("query")) or "",
    ).describe()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _starting_over(now: datetime) -> dict[str, object]:
    """A retried row's new values: as a new email, due now, with no published mark."""
    return {
        "status": EmailStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_expires_at": None,
        "updated_at": now,
    }


def _record(actor: str, action: str, target: dict[str, object], count: int) -> None:
    db.session.add(AdminAction(at=utcnow(), actor=actor, action=action, target=target, count=count))
    log.info("%s: %s of %s changed %s email(s)", actor, action, describe_target(target), count)
