"""Nothing lost when Redis is down at the POST; nothing sent twice when a task arrives twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.redis_server import RedisServer
from devtools.smtp_server import SMTPServer
from tests.forms import post_name
from tests.integration.conftest import app_settings, emails, wait_for_status, worker_in_thread
from web import create_app
from web.extensions import db
from web.models import Email, utcnow
from web.outbox.api import publish, send_email
from worker.tasks import sweep_outbox


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop and start again on the same port."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_on_own_redis(
    app: Flask, own_redis: RedisServer, smtp_server: SMTPServer, database_url: str
) -> Flask:
    # `app` cleaned the database; this app shares it but talks to `own_redis`.
    return create_app("testing", **app_settings(database_url, own_redis.url, smtp_server.port))


def test_redis_down_at_the_post_still_redirects_and_the_sweeper_delivers_later(
    app_on_own_redis: Flask, own_redis: RedisServer, smtp_server: SMTPServer
) -> None:
    app = app_on_own_redis
    client = app.test_client()
    own_redis.stop()

    started = time.monotonic()
    response = post_name(client, "Mallory")
    elapsed = time.monotonic() - started
    assert response.status_code == 302
    assert elapsed < 1.0, f"the POST took {elapsed:.2f}s with Redis down"
    assert "Pleased to meet you!" in client.get("/").get_data(as_text=True)
    (row,) = emails(app)
    assert row.status == "queued"

    own_redis.start()  # back, and empty: the message was never published
    with worker_in_thread(app):
        with app.app_context():
            assert sweep_outbox() == 1
        (row,) = wait_for_status(app, "sent")
    assert row.attempts == 1
    assert len(smtp_server.wait_for_messages(1)) == 1


def test_same_task_delivered_many_times_sends_one_email(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.delay_per_message = 0.3  # keeps the first delivery in flight while others arrive
    with app.app_context():
        email_id = send_email("admin@example.com", "Once", "mail/new_user", name="Niaj")
        db.session.commit()  # publishes once
        assert publish([(email_id, "normal")] * 5) == []  # and five more times
    (row,) = wait_for_status(app, "sent")
    time.sleep(1.0)
    assert len(smtp_server.messages) == 1
    assert row.attempts == 1


def test_sweeper_racing_a_worker_sends_one_email(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.delay_per_message = 0.2
    with app.app_context():
        for n in range(10):
            send_email("admin@example.com", f"Race {n}", "mail/new_user", name=f"Olivia {n}")
        db.session.commit()  # publishes the ten ids

    def sweep() -> None:
        with app.app_context():
            sweep_outbox()

    sweepers = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in sweepers:
        thread.start()
    for thread in sweepers:
        thread.join()
    wait_for_status(app, "sent", count=10, timeout=30)
    time.sleep(1.0)
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == 10 and len(set(ids)) == 10


def test_expired_lease_is_taken_over_by_the_sweeper(
    app: Flask, redis_url: str, smtp_server: SMTPServer
) -> None:
    """A worker died mid-send and Redis lost its message: once the lease expires, it is resent."""
    import redis

    with app.app_context():
        email = db.session.get(
            Email, send_email("admin@example.com", "Orphan", "mail/new_user", name="Peggy")
        )
        db.session.commit()
        email.status = "sending"
        email.attempts = 1
        email.lease_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    redis.Redis.from_url(redis_url).flushall()
    with worker_in_thread(app):
        with app.app_context():
            assert sweep_outbox() == 1
        (row,) = wait_for_status(app, "sent")
    assert row.attempts == 2
    assert row.lease_expires_at is None
    assert len(smtp_server.messages) == 1


def test_post_with_redis_and_smtp_fine_takes_well_under_a_second(
    client: FlaskClient, celery_worker: object, smtp_server: SMTPServer
) -> None:
    smtp_server.delay_per_message = 2.0  # the request must not wait for SMTP
    started = time.monotonic()
    assert post_name(client, "Quentin").status_code == 302
    assert time.monotonic() - started < 1.0
