"""Command-line commands: `flask --app web send-test-email ADDRESS`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from web.extensions import db
from web.outbox import send_email
from web.outbox_cli import outbox


@click.command("send-test-email")
@click.argument("address")
@with_appcontext
def send_test_email(address: str) -> None:
    """Queue a test email to ADDRESS through the outbox and print its id."""
    try:
        email = send_email(address, "Test email", "mail/test_email")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ADDRESS") from None
    db.session.commit()
    click.echo(f"queued test email {email.id} to {address}")


def register(app: Flask) -> None:
    app.cli.add_command(send_test_email)
    app.cli.add_command(outbox)
