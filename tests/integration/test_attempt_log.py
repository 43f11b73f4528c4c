"""web/outbox/attempt_log.py and the worker's side of it: a row per delivery attempt, written
by a real worker against the test SMTP server, shown on the email's page, kept by the purge.

Every test here runs on SQLite and on PostgreSQL (see `database_url` in conftest.py).
"""

from __future__ import annotations

import re
import socket
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.smtp_server import SMTPServer
from tests.integration.admin_login import PASSWORD, USERNAME, log_in
from tests.integration.conftest import ADMIN, wait_for_status, worker_in_thread
from tests.integration.outbox_rows import queue_email
from web.extensions import db
from web.models import DeliveryAttempt, Email, PurgedAttempts, utcnow
from web.outbox import attempt_log, queries


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` with an admin account."""
    app.config.update(ADMIN_USERNAME=USERNAME, ADMIN_PASSWORD=PASSWORD)
    return app


def _attempts(app: Flask, email_id: int) -> list[DeliveryAttempt]:
    with app.app_context():
        rows = attempt_log.attempts_of(email_id)
        db.session.expunge_all()
        return rows


def test_451_451_250_leaves_three_attempts_shown_as_a_timeline(
    app: Flask, client: FlaskClient, smtp_server: SMTPServer
) -> None:
    smtp_server.reply_at("eom", "451 4.3.0 Temporary local problem", times=2)
    started = utcnow()
    email_id = queue_email(app)
    with worker_in_thread(app):
        wait_for_status(app, "sent")
    attempts = _attempts(app, email_id)
    assert [(a.number, a.outcome, a.error_class) for a in attempts] == [
        (1, "retry", "SMTPDataError"),
        (2, "retry", "SMTPDataError"),
        (3, "sent", None),
    ]
    assert [a.reply for a in attempts[:2]] == [
        "DATA refused: 451 4.3.0 Temporary local problem"
    ] * 2
    assert attempts[2].reply.startswith("250 ")
    host = socket.gethostname()
    for attempt in attempts:
        assert started <= attempt.started_at <= attempt.finished_at <= utcnow()
        assert 0 <= attempt.duration_ms < 10_000
        assert re.fullmatch(rf"{re.escape(host)}/\d+", attempt.worker)
    # The backoff: each attempt started after the previous one ended.
    assert attempts[0].finished_at <= attempts[1].started_at
    assert attempts[1].finished_at <= attempts[2].started_at

    assert log_in(client).status_code == 302
    page = client.get(f"/admin/emails/{email_id}").get_data(as_text=True)
    assert "<title>[Flasky] Test" in page  # the page's title is the subject
    timeline = page[page.index('<ol class="timeline">') : page.index("</ol>")]
    assert re.findall(r'<span class="attempt-outcome">(\w+)</span>', timeline) == [
        "retry",
        "retry",
        "sent",
    ]
    assert timeline.count("451 4.3.0 Temporary local problem") == 2
    assert timeline.count("<code>SMTPDataError</code>") == 2
    assert attempts[2].reply in timeline


def test_a_permanent_failure_is_one_failed_attempt_with_the_refused_recipients(
    app: Flask, smtp_server: SMTPServer
) -> None:
    smtp_server.refuse_recipient(ADMIN, "550 5.1.1 No such user")
    email_id = queue_email(app)
    with worker_in_thread(app):
        (row,) = wait_for_status(app, "failed")
    (attempt,) = _attempts(app, email_id)
    assert (attempt.number, attempt.outcome, attempt.error_class) == (
        1,
        "failed",
        "SMTPRecipientsRefused",
    )
    assert attempt.reply == row.last_error  # the summary on the email is the last reply
    assert "550 5.1.1 No such user" in attempt.reply


def test_a_purge_deletes_the_attempts_with_their_emails_and_keeps_their_totals(
    app: Flask, smtp_server: SMTPServer
) -> None:
    smtp_server.reply_at("eom", "451 4.3.0 Temporary local problem")
    old, recent = queue_email(app), queue_email(app)
    with worker_in_thread(app):
        wait_for_status(app, "sent", count=2)
    with app.app_context():
        sent_long_ago = utcnow() - timedelta(days=40)
        db.session.execute(db.update(Email).where(Email.id == old).values(sent_at=sent_long_ago))
        db.session.commit()
        kept_attempts = len(attempt_log.attempts_of(recent))
        old_outcomes = sorted(a.outcome for a in attempt_log.attempts_of(old))
        assert queries.purge(timedelta(days=30)) == queries.Purged(sent=1, cancelled=0)
        db.session.commit()
        assert attempt_log.attempts_of(old) == []
        assert len(attempt_log.attempts_of(recent)) == kept_attempts
        purged = dict(
            db.session.execute(db.select(PurgedAttempts.outcome, PurgedAttempts.count)).all()
        )
    # Whichever email met the 451, the purged one's attempts are all counted.
    assert sum(purged.values()) == len(old_outcomes)
    assert purged["sent"] == 1 and purged.get("retry", 0) == old_outcomes.count("retry")
