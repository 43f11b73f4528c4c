"""`send_bulk` end to end, on SQLite and PostgreSQL: each recipient's own email reaches the real
SMTP server through the real worker; a bad recipient leaves no row and no message in Redis.

Bulk rows may be fed to the broker by the sweeper rather than at commit, so the delivery test
runs a sweep after the commit, as beat would (published twice, a row is still sent once).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask import Flask

from celeryconfig import PRIORITY_QUEUES
from devtools.smtp_server import SMTPServer
from tests.integration.conftest import emails, wait_for_status
from web.extensions import db
from web.models import Email
from web.outbox.api import send_email
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


# What a row holds of its call; ids, Message-IDs and times differ from one row to the next.
ROW_FIELDS = (
    "recipients", "cc", "bcc", "reply_to", "sender", "subject", "text_body", "html_body",
    "priority", "idempotency_key", "send_at", "attachment_count", "status", "attempts",
)  # fmt: skip


def _row(app: Flask, email_id: int) -> dict[str, object]:
    with app.app_context():
        row = db.session.get(Email, email_id)
        assert row is not None
        return {name: getattr(row, name) for name in ROW_FIELDS}


def test_a_bulk_writes_the_rows_send_email_writes_and_honours_keys(app: Flask) -> None:
    """Each database has its own INSERT (PostgreSQL: arrays through unnest): both must store
    what send_email stores for the same arguments, keys included."""
    shared = {
        "cc": "Boss <boss@example.com>",
        "bcc": ["archive@example.com"],
        "reply_to": "Help <help@example.com>",
        "send_at": datetime.now(UTC) + timedelta(hours=1),
        "priority": "normal",
    }
    people = [("ann@example.com", "Ann «Ω»", "k:ann"), ("Bob <bob@example.com>", "Bob", None)]
    with app.app_context():
        earlier = send_email("cy@example.com", "Digest", "mail/new_user", name="Cy", **shared)
        singles = [
            send_email(to, "Digest", "mail/new_user", name=name, idempotency_key=key, **shared)
            for to, name, key in people
        ]
        db.session.execute(db.delete(Email).where(Email.id.in_(singles)))
        db.session.execute(db.update(Email).values(idempotency_key="k:cy"))
        db.session.commit()
        recipients = [Recipient(to, {"name": name}, key) for to, name, key in people]
        recipients += [Recipient("cy@example.com", {"name": "Cy"}, "k:cy"), recipients[0]]
        ids = send_bulk("Digest", "mail/new_user", recipients, **shared)
        db.session.commit()
    assert ids[2] == earlier and ids[3] == ids[0] and len({ids[0], ids[1], earlier}) == 3
    assert len(emails(app)) == 3
    for email_id, (to, name, key) in zip(ids, people, strict=False):
        with app.app_context():
            expected = send_email(to, "Digest", "mail/new_user", name=name, **shared)
            db.session.commit()
        assert _row(app, email_id) == {**_row(app, expected), "idempotency_key": key}
