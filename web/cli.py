"""Command-line commands: `flask --app web send-test-email ADDRESS [options]`, `flask outbox`."""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from web.extensions import db
from web.outbox.api import InvalidEmail, send_email
from web.outbox.cli import outbox
from web.outbox.priority import Priority
from web.schema import exit_if_unmigrated


def _aware_time(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time such as 2026-12-01T08:00:00+01:00",
            param_hint="--at",
        ) from None
    if at.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset: add one, e.g. {value}+00:00 or {value}Z",
            param_hint="--at",
        )
    return at


def _attachment(path: Path) -> tuple[str, str, bytes]:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path.name, content_type, path.read_bytes()


@click.command("send-test-email")
@click.argument("address")
@click.option("--cc", multiple=True, help="Also to this address, in Cc (repeatable).")
@click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="Attach this file (repeatable); the content type is guessed from its name.",
)
@click.option("--at", "at", help="Not before this ISO 8601 time, with a UTC offset.")
@click.option(
    "--priority",
    type=click.Choice([p.value for p in Priority]),
    default=Priority.NORMAL.value,
    show_default=True,
)
@with_appcontext
def send_test_email(
    address: str, cc: tuple[str, ...], attach: tuple[Path, ...], at: str | None, priority: str
) -> None:
    """Queue a test email to ADDRESS through the outbox and print its id."""
    send_at = _aware_time(at) if at else None
    exit_if_unmigrated(current_app._get_current_object())
    try:
        email_id = send_email(
            address,
            "Test email",
            "mail/test_email",
            cc=list(cc),
            attachments=[_attachment(path) for path in attach],
            send_at=send_at,
            priority=priority,
        )
    except InvalidEmail as exc:
        hints = {"to": "ADDRESS", "cc": "--cc", "attachments": "--attach", "send_at": "--at"}
        raise click.BadParameter(exc.reason, param_hint=hints.get(exc.field, exc.field)) from None
    db.session.commit()
    later = send_at is not None and send_at > datetime.now(UTC)
    when = f", not before {send_at.isoformat()}" if later else ""
    click.echo(f"queued test email {email_id} to {address} ({priority}{when})")


def register(app: Flask) -> None:
    app.cli.add_command(send_test_email)
    app.cli.add_command(outbox)
