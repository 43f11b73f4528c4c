"""How delivery goes over time (web/outbox/activity.py): attempts per interval, the backlog by
priority, the attempts' totals, and the dashboard's fragment that refreshes them.

On SQLite and PostgreSQL both: the intervals are computed in SQL, differently on each.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from tests.integration.admin_login import PASSWORD, USERNAME, log_in
from tests.integration.outbox_rows import add_attempts, add_emails
from web.extensions import db
from web.models import PurgedAttempts, utcnow
from web.outbox import activity

NOW = datetime(2026, 11, 29, 23, 40, 30, 250000)  # naive UTC, as the models store times


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` (its emails, and so their attempts, deleted), with no purged counts and
    an admin account."""
    app.config.update(
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD=PASSWORD,
        ADMIN_LOGIN_RATE_LIMIT="1000 per minute",  # counted in a Redis other runs share
    )
    with app.app_context():
        db.session.execute(delete(PurgedAttempts))
        db.session.commit()
    return app


def busy(line: activity.Timeline) -> dict[str, dict[str, int]]:
    """The timeline's intervals that had attempts, by their start ("HH:MM")."""
    return {i.start.strftime("%H:%M"): i.counts for i in line.intervals if i.total}


def test_the_last_hour_counts_each_minute_up_to_the_current_one(app: Flask) -> None:
    (email_id,) = add_emails(app, status="sent")
    add_attempts(
        app,
        email_id,
        [
            (datetime(2026, 11, 29, 22, 40, 59, 999999), "sent"),  # before the hour: left out
            (datetime(2026, 11, 29, 22, 41), "retry"),  # the first minute's first instant
            (datetime(2026, 11, 29, 23, 5, 59, 999999), "failed"),
            (datetime(2026, 11, 29, 23, 5, 0), "failed"),
            (datetime(2026, 11, 29, 23, 5, 30), "sent"),
            (datetime(2026, 11, 29, 23, 40, 30, 500000), "sent"),  # the current minute
            (datetime(2026, 11, 29, 23, 41), "sent"),  # after the current minute: left out
        ],
    )
    with app.app_context():
        line = activity.timeline(activity.HOUR, NOW)
    assert len(line.intervals) == 60
    assert line.start == datetime(2026, 11, 29, 22, 41) and line.end == datetime(
        2026, 11, 29, 23, 41
    )
    assert busy(line) == {
        "22:41": {"sent": 0, "retry": 1, "failed": 0},
        "23:05": {"sent": 1, "retry": 0, "failed": 2},
        "23:40": {"sent": 1, "retry": 0, "failed": 0},
    }
    assert line.totals == {"sent": 2, "retry": 1, "failed": 2}


def test_the_last_day_counts_half_hours(app: Flask) -> None:
    (email_id,) = add_emails(app, status="sent")
    add_attempts(
        app,
        email_id,
        [
            (datetime(2026, 11, 28, 23, 59, 59), "sent"),  # more than a day ago
            (datetime(2026, 11, 29, 0, 0), "sent"),
            (datetime(2026, 11, 29, 0, 29, 59), "retry"),
            (datetime(2026, 11, 29, 12, 30), "failed"),
            (datetime(2026, 11, 29, 23, 31), "sent"),
        ],
    )
    with app.app_context():
        line = activity.timeline(activity.DAY, NOW)
    assert len(line.intervals) == 48
    assert line.end == datetime(2026, 11, 30, 0, 0)
    assert busy(line) == {
        "00:00": {"sent": 1, "retry": 1, "failed": 0},
        "12:30": {"sent": 0, "retry": 0, "failed": 1},
        "23:30": {"sent": 1, "retry": 0, "failed": 0},
    }


def test_the_backlog_counts_what_waits_by_priority(app: Flask) -> None:
    later = NOW + timedelta(hours=1)
    add_emails(app, 2, priority="high")
    add_emails(app, priority="high", status="sending")
    add_emails(app, 3, priority="bulk", status="retrying", next_attempt_at=later)
    add_emails(app, priority="bulk", send_at=later, next_attempt_at=later)  # scheduled: not yet
    add_emails(app, priority="normal", send_at=NOW - timedelta(minutes=1))  # scheduled, now due
    for status in ("sent", "failed", "cancelled"):
        add_emails(app, status=status)
    with app.app_context():
        waiting = activity.backlog(NOW)
    assert waiting.counts == {
        "high": {"queued": 2, "retrying": 0, "sending": 1},
        "normal": {"queued": 1, "retrying": 0, "sending": 0},
        "bulk": {"queued": 0, "retrying": 3, "sending": 0},
    }
    assert waiting.largest == 3


def test_the_attempt_totals_add_the_purged_ones(app: Flask) -> None:
    (email_id,) = add_emails(app, status="sent")
    add_attempts(app, email_id, [(NOW, "retry"), (NOW, "retry"), (NOW, "sent")])
    with app.app_context():
        assert activity.attempt_totals() == {"sent": 1, "retry": 2, "failed": 0}
        db.session.add_all(
            [PurgedAttempts(outcome="sent", count=40), PurgedAttempts(outcome="failed", count=2)]
        )
        db.session.commit()
        assert activity.attempt_totals() == {"sent": 41, "retry": 2, "failed": 2}


def test_emails_are_counted_by_status_and_priority(app: Flask) -> None:
    add_emails(app, 2, priority="high")
    add_emails(app, status="sent", priority="bulk")
    with app.app_context():
        assert activity.emails_by_status_and_priority() == {
            ("queued", "high"): 2,
            ("sent", "bulk"): 1,
        }


def test_the_dashboards_fragment_has_the_counts_and_the_charts(
    app: Flask, client: FlaskClient
) -> None:
    assert client.get("/admin/activity").status_code == 302  # the admin's only
    assert log_in(client).status_code == 302
    (email_id,) = add_emails(app, 3)[:1]
    add_attempts(app, email_id, [(utcnow(), "retry")])
    response = client.get("/admin/activity")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert '<span class="count" data-status="queued">3</span>' in page
    assert 'id="oldest-undelivered" data-live' in page
    assert 'id="activity-charts" data-live' in page
    assert page.count("<svg") == 3
    assert "Last hour, per minute" in page and "0 sent, 1 retried, 0 failed" in page
    assert "3 queued (due), 0 retrying, 0 sending" in page
    assert "<html" not in page  # a fragment, not a page
