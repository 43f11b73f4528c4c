"""/metrics (web/metrics.py): Prometheus's text format, read by prometheus_client's own parser;
the values the database holds; counters that a purge does not lower; who may read it; cheap.

On SQLite and PostgreSQL both.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, event, func, select

from tests.integration.admin_login import PASSWORD, USERNAME, log_in
from tests.integration.outbox_rows import add_attempts, add_emails
from web import metrics
from web.extensions import db
from web.models import DeliveryAttempt, Email, PurgedAttempts, utcnow
from web.outbox import queries

TOKEN = "mt-3sKq9Vw2xZ-0bLr7dN4pQe8uYh1TfG6a"
BEARER = {"Authorization": f"Bearer {TOKEN}"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def app(app: Flask) -> Flask:
    """conftest's `app` with an admin account, a metrics token and no purged counts."""
    app.config.update(
        ADMIN_USERNAME=USERNAME,
        ADMIN_PASSWORD=PASSWORD,
        ADMIN_LOGIN_RATE_LIMIT="1000 per minute",  # counted in a Redis other runs share
        METRICS_TOKEN=TOKEN,
    )
    with app.app_context():
        db.session.execute(delete(PurgedAttempts))
        db.session.commit()
    return app


def scrape(client: FlaskClient) -> Samples:
    """/metrics read as Prometheus reads it: every sample by name and labels."""
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def emails(status: str, priority: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("flasky_outbox_emails", (("priority", priority), ("status", status)))


def attempts(outcome: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("flasky_delivery_attempts_total", (("outcome", outcome),))


AGE = ("flasky_outbox_oldest_due_age_seconds", ())
SCHEDULED = ("flasky_outbox_scheduled_emails", ())


def test_the_gauges_and_counters_are_the_databases(app: Flask, client: FlaskClient) -> None:
    now = utcnow()
    add_emails(app, 2, priority="high", created_at=now - timedelta(minutes=10))
    add_emails(app, priority="bulk", send_at=now + timedelta(hours=1))  # scheduled
    (sent,) = add_emails(app, status="sent", priority="normal", sent_at=now)
    add_emails(app, status="failed", priority="normal")
    add_attempts(app, sent, [(now, "retry"), (now, "retry"), (now, "sent")])
    with app.app_context():
        db.session.add(PurgedAttempts(outcome="failed", count=7))
        db.session.commit()

    samples = scrape(client)

    assert samples[emails("queued", "high")] == 2
    assert samples[emails("queued", "bulk")] == 1
    assert samples[emails("sent", "normal")] == 1
    assert samples[emails("failed", "normal")] == 1
    assert samples[emails("cancelled", "high")] == 0  # every series, zeros included
    assert sum(v for (name, _), v in samples.items() if name == "flasky_outbox_emails") == 5
    assert samples[SCHEDULED] == 1
    assert 600 <= samples[AGE] < 660  # the two high ones, due for ten minutes
    assert samples[attempts("sent")] == 1
    assert samples[attempts("retry")] == 2
    assert samples[attempts("failed")] == 7  # purged, still counted


def test_with_nothing_due_the_oldest_age_is_zero(app: Flask, client: FlaskClient) -> None:
    add_emails(app, send_at=utcnow() + timedelta(days=1))
    samples = scrape(client)
    assert samples[AGE] == 0 and samples[SCHEDULED] == 1


def test_the_counters_do_not_go_down_when_a_purge_deletes_attempts(
    app: Flask, client: FlaskClient
) -> None:
    now = utcnow()
    (old,) = add_emails(app, status="sent", sent_at=now - timedelta(days=40))
    (new,) = add_emails(app, status="sent", sent_at=now)
    add_attempts(
        app, old, [(now - timedelta(days=40), "retry"), (now - timedelta(days=40), "sent")]
    )
    add_attempts(app, new, [(now, "sent")])
    before = scrape(client)

    with app.app_context():  # `flask outbox purge --older-than 30`
        assert queries.purge(timedelta(days=30)) == queries.Purged(sent=1, cancelled=0)
        db.session.commit()
        assert db.session.get(Email, old) is None
        assert db.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 1
    after = scrape(client)

    for outcome in ("sent", "retry", "failed"):
        assert after[attempts(outcome)] == before[attempts(outcome)], outcome
    assert after[attempts("sent")] == 2
    assert after[emails("sent", "normal")] == 1


# --- who may read it ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "wrong", "longer", "basic", "empty"],
)
def test_without_the_token_or_a_session_it_is_401(client: FlaskClient, headers: dict) -> None:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "flasky_" not in response.get_data(as_text=True)


def test_the_token_reads_it(client: FlaskClient) -> None:
    response = client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_without_a_token_configured_only_the_admins_session_reads_it(
    app: Flask, client: FlaskClient
) -> None:
    app.config["METRICS_TOKEN"] = None
    assert client.get("/metrics", headers=BEARER).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert log_in(client).status_code == 302
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "flasky_delivery_attempts_total" in response.get_data(as_text=True)


def test_the_token_is_compared_in_constant_time(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real_compare_digest = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare_digest(a, b)

    monkeypatch.setattr(metrics.hmac, "compare_digest", compare_digest)
    assert client.get("/metrics", headers={"Authorization": "Bearer short"}).status_code == 401
    assert client.get("/metrics", headers=BEARER).status_code == 200
    # Digests of the same length whatever was sent: the time tells nothing of the token.
    assert [(len(a), len(b)) for a, b in compared] == [(32, 32), (32, 32)]


# --- cheap, and never rate limited ------------------------------------------------------------


@contextmanager
def counted_statements(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_scrape_is_a_few_queries_however_many_rows(app: Flask, client: FlaskClient) -> None:
    with counted_statements(app) as statements:
        scrape(client)
    few = len(statements)
    (email_id,) = add_emails(app, status="sent")
    add_emails(app, 40)
    add_attempts(app, email_id, [(utcnow(), "sent")] * 30)
    with counted_statements(app) as statements:
        scrape(client)
    assert len(statements) == few <= 6


def test_a_scraper_is_never_rate_limited(client: FlaskClient) -> None:
    for _ in range(30):
        response = client.get("/metrics", headers=BEARER)
        assert response.status_code == 200
        assert "Retry-After" not in response.headers
