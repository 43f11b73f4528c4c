"""`send_bulk` end to end, on SQLite and PostgreSQL: each recipient's own email reaches the real
SMTP server through the real worker; a bad recipient leaves no row and no message in Redis.

Bulk rows may be fed to the broker by the sweeper rather than at commit, so the delivery test
runs a sweep after the commit, as beat would (published twice, a row is still sent once).
"""

from __future__ import annotations

import pytest
import redis
from flask import Flask

from celeryconfig import PRIORITY_QUEUES
from devtools.smtp_server import SMTPServer
from tests.integration.conftest import emails, wait_for_status
from web.extensions import db
from web.outbox.bulk import InvalidEmail, Recipient, send_bulk
from worker.tasks import sweep_outbox

PEOPLE = [(f"user{n}@example.com", f"Ada Number{n:02}") for n in range(20)]


def test_each_recipient_receives_its_own_email(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    with app.app_context():
        ids = send_bulk(
            "Your digest",
            "mail/new_user",
            [Recipient(address, {"name": name}) for address, name in PEOPLE],
        )
        db.session.commit()
        sweep_outbox()
    received = smtp_server.wait_for_messages(len(PEOPLE), timeout=30)
    by_recipient = {tuple(message.rcpt_tos): message.parsed() for message in received}
    assert sorted(by_recipient) == sorted((address,) for address, _ in PEOPLE)
    for address, name in PEOPLE:
        message = by_recipient[(address,)]
        assert message["Subject"] == "[Flasky] Your digest"
        text, html = (message.get_body((kind,)).get_content() for kind in ("plain", "html"))
        assert name in text and name in html
        others = [other for _, other in PEOPLE if other != name]
        assert not any(other in text + html for other in others)
    sent = wait_for_status(app, "sent", count=len(PEOPLE))
    assert sorted(row.id for row in sent) == sorted(ids)


def test_a_bad_recipient_in_the_middle_writes_and_publishes_nothing(
    app: Flask, redis_url: str
) -> None:
    recipients = [Recipient(address, {"name": name}) for address, name in PEOPLE]
    recipients[10] = Recipient("not an address", {"name": "Nobody"})
    with app.app_context():
        with pytest.raises(InvalidEmail, match=r"^recipients\[10\]\.to: "):
            send_bulk("Your digest", "mail/new_user", recipients, priority="normal")
        db.session.commit()
    assert emails(app) == []
    broker = redis.Redis.from_url(redis_url)
    assert [broker.llen(queue) for queue in PRIORITY_QUEUES.values()] == [0, 0, 0]
