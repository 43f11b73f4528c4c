"""The attempt log: every delivery attempt of an email, as the worker recorded it
(worker/claims.py writes the rows, in the transaction of each outcome).

The log is kept as long as its email: `flask outbox purge` deletes both (ON DELETE CASCADE),
after adding the deleted attempts to `purged_attempts`, so that the totals /metrics reports
as counters never go down.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, insert, select, update

from web.extensions import db
from web.models import DeliveryAttempt, Email, PurgedAttempts


def attempts_of(email_id: int) -> list[DeliveryAttempt]:
    """The email's attempts in the order they started (a retry by an operator starts the
    numbers again at 1)."""
    statement = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.email_id == email_id)
        .order_by(DeliveryAttempt.started_at, DeliveryAttempt.id)
    )
    return list(db.session.scalars(statement))


def count_before_purge(emails: ColumnElement[bool]) -> None:
    """Add the attempts of the emails matching `emails`, about to be deleted, to the purged
    totals (in the caller's transaction, which then deletes the emails)."""
    statement = (
        select(DeliveryAttempt.outcome, func.count())
        .join(Email, Email.id == DeliveryAttempt.email_id)
        .where(emails)
        .group_by(DeliveryAttempt.outcome)
    )
    for outcome, count in db.session.execute(statement).all():
        added = db.session.execute(
            update(PurgedAttempts)
            .where(PurgedAttempts.outcome == outcome)
            .values(count=PurgedAttempts.count + count)
        ).rowcount
        if not added:  # the first purge of this outcome
            db.session.execute(insert(PurgedAttempts).values(outcome=outcome, count=count))
