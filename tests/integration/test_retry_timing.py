"""worker/retry_delay.py against the test SMTP server speaking Postfix's and postgrey's replies:
the next attempt comes when the server asked for it, not at the backoff's first 0.1 s.

Every test here runs on SQLite and on PostgreSQL (see `database_url` in conftest.py).
"""

from __future__ import annotations

from flask import Flask

from devtools.smtp_server import SMTPServer
from tests.integration.conftest import ADMIN, wait_for_status
from tests.integration.outbox_rows import queue_email
from web.models import DeliveryAttempt
from web.outbox import attempt_log

POSTGREY = (
    f"450 4.2.0 <{ADMIN}>: Recipient address rejected: Greylisted, "
    "see http://postgrey.schweikert.ch/help/example.com.html"
)


def _attempts_after(
    app: Flask, smtp_server: SMTPServer, reply: str, **settings: object
) -> list[DeliveryAttempt]:
    """Queue an email whose first RCPT gets `reply`; return its attempts once it is sent."""
    app.config.update(settings)
    smtp_server.reply_at("rcpt", reply)
    email_id = queue_email(app)
    wait_for_status(app, "sent", timeout=20)
    with app.app_context():
        return attempt_log.attempts_of(email_id)


def _wait(attempts: list[DeliveryAttempt]) -> float:
    first, second = attempts
    return (second.started_at - first.finished_at).total_seconds()


def test_a_greylist_that_states_its_delay_is_waited_for_as_long(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    reply = f"450 4.2.0 <{ADMIN}>: Recipient address rejected: Greylisted for 2 seconds"
    attempts = _attempts_after(app, smtp_server, reply, FLASKY_RETRY_BACKOFF_CAP=5.0)
    assert [a.outcome for a in attempts] == ["retry", "sent"]
    assert 2.0 <= _wait(attempts) < 4.0  # not the backoff's 0.05-0.1 s (conftest)
    assert len(smtp_server.messages) == 1


def test_a_greylist_that_states_none_gets_the_greylist_delay(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    attempts = _attempts_after(app, smtp_server, POSTGREY, FLASKY_GREYLIST_DELAY=2.0)
    assert [a.outcome for a in attempts] == ["retry", "sent"]
    assert 2.0 <= _wait(attempts) < 4.0


def test_a_busy_servers_451_is_retried_at_the_backoff(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    attempts = _attempts_after(
        app, smtp_server, "451 4.3.0 Temporary local problem", FLASKY_GREYLIST_DELAY=30.0
    )
    assert [a.outcome for a in attempts] == ["retry", "sent"]
    assert _wait(attempts) < 1.5
