"""`flask --app web outbox ...`: the outbox dashboard's numbers and actions, in a terminal.

stats                      counts per status, scheduled emails, age of the oldest due one
list [FILTER] [--limit N] [--json]   the recent emails the filter matches
retry ID                   put a failed email back in the queue
retry [FILTER] [--yes]     every failed email the filter matches (asks first, unless --yes)
cancel ID                  cancel a scheduled email before it is due
actions [--limit N] [--json]   the operators' recorded actions, newest first
purge --older-than DAYS    delete sent and cancelled emails older than DAYS days

FILTER: --status S (a status, or "scheduled": queued, not yet due), --priority P, --query TEXT
(an id, "#123", or part of a recipient, the subject or the idempotency key).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
from flask import current_app
from flask.cli import with_appcontext

from web.extensions import db
from web.models import AdminAction, Email, utcnow
from web.outbox import actions, queries, search
from web.outbox.search import EmailFilter
from web.schema import exit_if_unmigrated

F = TypeVar("F", bound=Callable[..., Any])

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
_COLUMN_WIDTHS = {"recipient": 32, "subject": 40, "last error": 60, "target": 60}
_ACTION_HEADERS = ("id", "at", "actor", "action", "emails", "target")


def _filter_options(command: F) -> F:
    """--status, --priority and --query: the dashboard's filter (web/outbox/search.py)."""
    options = [
        click.option(
            "--status",
            metavar="STATUS",
            help=f"Only this status ({', '.join(search.FILTERS)}; scheduled: queued, not yet due).",
        ),
        click.option(
            "--priority",
            metavar="PRIORITY",
            help=f"Only this priority ({', '.join(search.PRIORITIES)}).",
        ),
        click.option(
            "--query",
            "-q",
            metavar="TEXT",
            help="An id (42 or #42), or part of a recipient, the subject or the idempotency key "
            "(any case).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _filter(status: str | None, priority: str | None, query: str | None) -> EmailFilter:
    parsed = search.parse_filter(status, priority, query)
    if parsed.problems:
        raise click.BadParameter(" ".join(parsed.problems))
    return parsed.filter


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
@_filter_options
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N emails."
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of objects, every value whole.")
@with_appcontext
def list_emails(
    status: str | None, priority: str | None, query: str | None, limit: int, as_json: bool
) -> None:
    """Print the most recent emails the filter matches, newest first; times in ISO 8601, in
    UTC (+00:00). The table cuts long values; --json gives them whole."""
    email_filter = _filter(status, priority, query)
    now = utcnow()
    found = queries.recent_emails(limit, email_filter, now=now)
    if as_json:
        click.echo(json.dumps([_email_json(email, now) for email in found], indent=2))
    elif not found:
        click.echo(_nothing_found(email_filter))
    else:
        click.echo(_table(_LIST_HEADERS, [_list_row(email, now) for email in found]))


def _nothing_found(email_filter: EmailFilter) -> str:
    if email_filter == EmailFilter(status=search.SCHEDULED):
        return "no emails scheduled for later"
    if email_filter == EmailFilter(status=email_filter.status):
        return "no emails" + (f" with status {email_filter.status}" if email_filter.status else "")
    return f"no emails match ({email_filter.describe()})"


def _email_json(email: Email, now: datetime) -> dict[str, object]:
    return {
        "id": email.id,
        "status": email.status,
        "priority": email.priority,
        "scheduled": queries.is_scheduled(email, now),
        "send_at": _iso_or_none(email.send_at),
        "attempts": email.attempts,
        "recipients": email.recipients,
        "subject": email.subject,
        "idempotency_key": email.idempotency_key,
        "last_error": email.last_error,
        "created_at": _iso_or_none(email.created_at),
        "sent_at": _iso_or_none(email.sent_at),
    }


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
@click.argument("email_id", metavar="[ID]", type=int, required=False)
@_filter_options
@click.option("--yes", "-y", is_flag=True, help="Retry without asking (the filter's form).")
@with_appcontext
def retry(
    email_id: int | None, status: str | None, priority: str | None, query: str | None, yes: bool
) -> None:
    """Put failed email ID, or every failed email the filter matches, back in the queue.

    Each starts over as a new email would: `queued`, attempts 0. ID is published at once; an
    ID that has not failed is left alone and the command exits with status 1. With a filter
    (or none: every failed email), the command counts the failed emails it matches and asks
    before retrying them (--yes: without asking); an email retried or failed anew since the
    count is left alone. The sweeper feeds them to the workers. Each retry is recorded (`actions`).
    """
    if email_id is not None:
        if status or priority or query:
            raise click.UsageError("give either an ID or filter options, not both")
        _retry_one(email_id)
        return
    try:
        failed = actions.failed_only(_filter(status, priority, query))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--status'") from None
    counted_at = utcnow()
    count = queries.count_emails(failed, now=counted_at)
    db.session.rollback()  # no transaction left open while the question waits
    if count == 0:
        click.echo(f"no emails match ({failed.describe()}): nothing to retry")
        return
    if not yes:
        click.confirm(f"Retry {_plural(count, 'email')} ({failed.describe()})?", abort=True)
    retried = actions.requeue_failed(failed, failed_before=counted_at, actor=actions.cli_actor())
    db.session.commit()  # asks for a sweep, which publishes them
    changed = count - retried
    click.echo(
        f"{_plural(retried, 'email')} queued again"
        + (f" ({changed} changed since they were counted)" if changed else "")
    )


def _retry_one(email_id: int) -> None:
    if actions.requeue(email_id, actor=actions.cli_actor()):
        db.session.commit()  # publishes the email
        click.echo(f"email {email_id} is queued again")
        return
    db.session.rollback()
    status = _status_of(email_id)
    if status is None:
        raise click.ClickException(f"there is no email {email_id}")
    raise click.ClickException(f"email {email_id} is {status}, not failed: nothing to retry")


@outbox.command("cancel")
@click.argument("email_id", metavar="ID", type=int)
@with_appcontext
def cancel(email_id: int) -> None:
    """Cancel scheduled email ID: one still queued for a time ahead. It is never sent.

    Any other email (due already, sent, failed...) is left alone and the command exits with
    status 1. The cancel is recorded (`actions`).
    """
    if actions.cancel(email_id, actor=actions.cli_actor()):
        db.session.commit()
        click.echo(f"email {email_id} is cancelled: it will not be sent")
        return
    db.session.rollback()
    refusal = actions.cancel_refusal(email_id)
    if refusal is None:
        raise click.ClickException(f"there is no email {email_id}")
    raise click.ClickException(refusal)


@outbox.command("actions")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N actions."
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of objects.")
@with_appcontext
def list_actions(limit: int, as_json: bool) -> None:
    """Print the operators' latest actions (retries, bulk retries, cancels), newest first:
    when, who (admin:NAME from the dashboard, cli:USER from here), what, how many emails."""
    found = actions.recent_actions(limit)
    if as_json:
        click.echo(json.dumps([_action_json(action) for action in found], indent=2))
    elif not found:
        click.echo("no actions recorded")
    else:
        click.echo(_table(_ACTION_HEADERS, [_action_row(action) for action in found]))


def _action_json(action: AdminAction) -> dict[str, object]:
    return {
        "id": action.id,
        "at": _iso_or_none(action.at),
        "actor": action.actor,
        "action": action.action,
        "target": action.target,
        "count": action.count,
    }


def _action_row(action: AdminAction) -> tuple[str, ...]:
    target = actions.describe_target(action.target)
    return (str(action.id), _iso(action.at), action.actor, action.action, str(action.count), target)


def _status_of(email_id: int) -> str | None:
    """The email's status; None if there is no such email (or the id is out of range)."""
    return queries.email_status(email_id) if 0 < email_id <= search.MAX_ID else None


@outbox.command("purge")
@click.option(
    "--older-than",
    "days",
    metavar="DAYS",
    type=click.IntRange(min=1),
    required=True,
    help="Delete sent and cancelled emails older than DAYS (at least 1) days.",
)
@with_appcontext
def purge(days: int) -> None:
    """Delete sent and cancelled emails older than DAYS days (retention).

    Sent emails go by the time they were sent, cancelled ones by the time they were cancelled;
    queued, sending, retrying and failed ones stay whatever their age. Run it daily (cron) so
    the outbox does not grow forever.
    """
    purged = queries.purge(timedelta(days=days))
    db.session.commit()
    click.echo(
        f"deleted {_plural(purged.sent, 'sent email')} and "
        f"{_plural(purged.cancelled, 'cancelled email')} older than {_plural(days, 'day')}"
    )


def _iso(moment: datetime | None) -> str:
    """A naive UTC time as ISO 8601 with its offset: 2026-11-29T21:55:50+00:00."""
    return "" if moment is None else moment.replace(tzinfo=UTC).isoformat(timespec="seconds")


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else _iso(moment)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _recipient(recipients: list[str]) -> str:
    first = recipients[0] if recipients else ""
    return first + (f" (+{len(recipients) - 1})" if len(recipients) > 1 else "")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; long cells cut at the column's width with an ellipsis, but the
    last column (a reason, or an action's target) wrapped whole onto further lines."""
    limits = [_COLUMN_WIDTHS.get(header) for header in headers]
    cells = [
        [
            _cut(" ".join(value.split()), limit)
            for value, limit in zip(row[:-1], limits, strict=False)
        ]
        for row in rows
    ]
    widths = [max(len(row[i]) for row in [list(headers), *cells]) for i in range(len(headers) - 1)]
    indent = sum(width + 2 for width in widths)
    wrap_at = limits[-1] or 1_000_000
    lines = []
    for line, last in [
        (list(headers[:-1]), headers[-1]),
        *zip(cells, (row[-1] for row in rows), strict=True),
    ]:
        start = "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True))
        parts = textwrap.wrap(" ".join(last.split()), wrap_at, break_long_words=True) or [""]
        lines.append(f"{start}  {parts[0]}".rstrip())
        lines += [" " * indent + part for part in parts[1:]]
    return "\n".join(lines)


def _cut(value: str, limit: int | None) -> str:
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"
