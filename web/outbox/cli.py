"""`flask --app web outbox ...`: the outbox dashboard's numbers and actions, in a terminal.

stats                      counts per status, scheduled emails, age of the oldest due one
list [--status S] [--limit N]   S: a status, or "scheduled" (queued, not yet due)
retry ID                   put a failed email back in the queue
purge --older-than DAYS    delete sent emails delivered more than DAYS days ago
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from web.extensions import db
from web.models import Email, utcnow
from web.outbox import queries
from web.schema import exit_if_unmigrated

_LIST_HEADERS = (
    "id",
    "status",
    "priority",
    "scheduled for",
    "attempts",
    "recipient",
    "subject",
    "last error",
)
_COLUMN_WIDTHS = {"recipient": 32, "subject": 40, "last error": 60}


@click.group("outbox")
@with_appcontext
def outbox() -> None:
    """Inspect the outbox of emails and act on it."""
    exit_if_unmigrated(current_app._get_current_object())


@outbox.command("stats")
@with_appcontext
def stats() -> None:
    """Print counts per status, the scheduled emails and the oldest undelivered age.

    Scheduled emails (queued, not yet due) are also counted as queued, and no age counts them:
    they are not late. A scheduled email that became due counts from its scheduled time.
    """
    result = queries.stats()
    width = max(map(len, result.counts))
    for status, count in result.counts.items():
        click.echo(f"{status:<{width}}  {count}")
    click.echo(f"scheduled (queued, not yet due): {result.scheduled}")
    click.echo(f"oldest undelivered: {queries.describe_age(result.oldest_undelivered)}")


@outbox.command("list")
@click.option(
    "--status",
    type=click.Choice(queries.FILTERS),
    help="Only this status, or only the scheduled emails (queued, not yet due).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N emails."
)
@with_appcontext
def list_emails(status: str | None, limit: int) -> None:
    """Print the most recent emails, newest first; times in ISO 8601, in UTC (+00:00)."""
    now = utcnow()
    rows = [_list_row(email, now) for email in queries.recent_emails(limit, status=status, now=now)]
    if not rows:
        if status == queries.SCHEDULED:
            click.echo("no emails scheduled for later")
        else:
            click.echo("no emails" + (f" with status {status}" if status else ""))
        return
    click.echo(_table(_LIST_HEADERS, rows))


def _list_row(email: Email, now: datetime) -> tuple[str, ...]:
    scheduled = queries.is_scheduled(email, now)
    return (
        str(email.id),
        email.status,
        email.priority,
        _iso(email.send_at) if scheduled else "",
        str(email.attempts),
        _recipient(email.recipients),
        email.subject,
        email.last_error or "",
    )


@outbox.command("retry")
@click.argument("email_id", metavar="ID", type=int)
@with_appcontext
def retry(email_id: int) -> None:
    """Put failed email ID back in the queue.

    It starts over as a new email would: `queued`, attempts 0, published at once. Any other
    status is left alone and the command exits with status 1.
    """
    if queries.requeue(email_id):
        db.session.commit()  # publishes the email
        click.echo(f"email {email_id} is queued again")
        return
    db.session.rollback()
    status = queries.email_status(email_id)
    if status is None:
        raise click.ClickException(f"there is no email {email_id}")
    raise click.ClickException(f"email {email_id} is {status}, not failed: nothing to retry")


@outbox.command("purge")
@click.option(
    "--older-than",
    "days",
    metavar="DAYS",
    type=click.IntRange(min=1),
    required=True,
    help="Delete sent emails delivered more than DAYS (at least 1) days ago.",
)
@with_appcontext
def purge(days: int) -> None:
    """Delete sent emails older than DAYS days (retention).

    Only `sent` emails go, by the time they were sent: queued, sending, retrying and failed
    ones stay whatever their age. Run it daily (cron) so the outbox does not grow forever.
    """
    count = queries.purge_sent(timedelta(days=days))
    db.session.commit()
    click.echo(f"deleted {_plural(count, 'sent email')} older than {_plural(days, 'day')}")


def _iso(moment: datetime | None) -> str:
    """A naive UTC time as ISO 8601 with its offset: 2026-11-29T21:55:50+00:00."""
    return "" if moment is None else moment.replace(tzinfo=UTC).isoformat(timespec="seconds")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _recipient(recipients: list[str]) -> str:
    first = recipients[0] if recipients else ""
    return first + (f" (+{len(recipients) - 1})" if len(recipients) > 1 else "")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; long cells cut at the column's width with an ellipsis."""
    limits = [_COLUMN_WIDTHS.get(header) for header in headers]
    cells = [
        [_cut(" ".join(value.split()), limit) for value, limit in zip(row, limits, strict=True)]
        for row in rows
    ]
    widths = [max(len(row[i]) for row in [list(headers), *cells]) for i in range(len(headers))]
    lines = [list(headers), *cells]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cut(value: str, limit: int | None) -> str:
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"
