"""web/outbox/bulk.py: `send_bulk()` checks every recipient before writing, and writes the rows
`send_email` would write, in one call.

Nothing is delivered here: a bulk arriving at a real SMTP server, on both databases, is in
tests/integration/test_bulk.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from web.extensions import db
from web.models import Email
from web.outbox import bulk
from web.outbox.api import send_email
from web.outbox.bulk import InvalidEmail, Recipient, send_bulk
from web.outbox.render import render_bodies


@pytest.fixture
def published(app_context: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple]]:
    """The (id, priority) pairs `send_bulk` asks to publish after the commit."""
    calls: list[tuple] = []
    monkeypatch.setattr(bulk, "publish_after_commit", lambda *args: calls.append(args))
    yield calls


def _people(count: int) -> list[Recipient]:
    return [Recipient(f"user{n}@example.com", {"name": f"User {n}"}) for n in range(count)]


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Email)) or 0


def test_each_recipient_gets_its_own_row_in_order_with_its_own_bodies(
    published: list[tuple],
) -> None:
    ids = send_bulk("News", "mail/new_user", _people(5))
    rows = [db.session.get(Email, email_id) for email_id in ids]
    assert [row.recipients for row in rows if row] == [[f"user{n}@example.com"] for n in range(5)]
    for number, row in enumerate(rows):
        assert row is not None
        assert (row.text_body, row.html_body) == render_bodies(
            "mail/new_user", name=f"User {number}"
        )
        assert (row.subject, row.priority, row.status, row.attempts) == (
            "[Flasky] News",
            "bulk",
            "queued",
            0,
        )
        assert row.next_attempt_at == row.created_at == row.updated_at
        assert row.send_at is None and row.lease_expires_at is None
        assert row.message_id.endswith("@example.com>")
    assert len({row.message_id for row in rows if row}) == 5
    assert published == [(email_id, "bulk") for email_id in ids]


def test_plain_mappings_a_list_of_addresses_and_the_shared_options_are_taken(
    published: list[tuple],
) -> None:
    [email_id] = send_bulk(
        "Minutes",
        "mail/new_user",
        [{"to": ["ann@example.com", "Bob <bob@example.com>"], "context": {"name": "Ann"}}],
        cc="boss@example.com",
        bcc=["archive@example.com"],
        reply_to="Help <help@example.com>",
        priority="normal",
    )
    row = db.session.get(Email, email_id)
    assert row is not None
    assert row.recipients == ["ann@example.com", "Bob <bob@example.com>"]
    assert (row.cc, row.bcc, row.reply_to) == (
        ["boss@example.com"],
        ["archive@example.com"],
        "Help <help@example.com>",
    )
    # As send_email: a row published at commit is left to its message by the sweeper.
    assert row.priority == "normal" and row.lease_expires_at is not None
    assert published == [(email_id, "normal")]


def test_a_scheduled_bulk_is_not_published(published: list[tuple]) -> None:
    at = datetime.now(UTC) + timedelta(hours=2)
    ids = send_bulk("Digest", "mail/new_user", _people(3), send_at=at)
    rows = [db.session.get(Email, email_id) for email_id in ids]
    expected = at.replace(tzinfo=None)
    assert all(row and row.send_at == row.next_attempt_at == expected for row in rows)
    assert published == []


@pytest.mark.parametrize(
    ("recipient", "field", "reason"),
    [
        (Recipient("not an address", {"name": "x"}), "recipients[2].to", "not a valid email"),
        (Recipient("a@example.com\r\nBcc: v@example.com"), "recipients[2].to", "line breaks"),
        (Recipient([], {"name": "x"}), "recipients[2].to", "at least one address"),
        (Recipient("a@example.com", {"name": "x"}, " "), "recipients[2].idempotency_key", "non"),
        (Recipient("a@example.com", {"name": "nul\x00"}), "recipients[2].context", "NUL"),
        (Recipient("a@example.com", {"name": "\ud800"}), "recipients[2].context", "surrogate"),
        (Recipient("Ann\u202e <a@example.com>"), "recipients[2].to", "U+202E"),
        (Recipient("a@example.com", {}, "k:\u202e1"), "recipients[2].idempotency_key", "U+202E"),
        (Recipient("a@example.com", ["name"]), "recipients[2].context", "mapping"),  # type: ignore[arg-type]
        ({"to": "a@example.com", "contxt": {}}, "recipients[2]", "contxt"),
        ({"context": {}}, "recipients[2]", "to"),
        ("a@example.com", "recipients[2]", "expected a Recipient or a mapping"),
    ],
)
def test_a_bad_recipient_anywhere_is_named_by_its_position_and_nothing_is_written(
    published: list[tuple], recipient: object, field: str, reason: str
) -> None:
    recipients = [*_people(2), recipient, *_people(2)]
    with pytest.raises(InvalidEmail) as caught:
        send_bulk("News", "mail/new_user", recipients)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and reason in caught.value.reason
    assert _count() == 0 and published == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"subject": "Hi\r\nBcc: v@example.com"}, "subject"),
        ({"subject": "\u202eHi"}, "subject"),
        ({"subject": "s" * 990}, "subject"),  # 999 characters with the prefix
        ({"reply_to": "Help\u2067 <help@example.com>"}, "reply_to"),
        ({"priority": "urgent"}, "priority"),
        ({"send_at": datetime(2030, 1, 1)}, "send_at"),
        ({"cc": "bad"}, "cc"),
        ({"recipients": "a@example.com"}, "recipients"),
    ],
)
def test_a_bad_shared_argument_is_named_as_send_email_names_it(
    published: list[tuple], options: dict[str, object], field: str
) -> None:
    arguments: dict[str, object] = {"subject": "News", "recipients": _people(2), **options}
    subject, recipients = arguments.pop("subject"), arguments.pop("recipients")
    with pytest.raises(InvalidEmail) as caught:
        send_bulk(subject, "mail/new_user", recipients, **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert _count() == 0 and published == []


def test_a_recipient_whose_message_is_over_the_limit_is_named(
    app_context: Flask, published: list[tuple]
) -> None:
    app_context.config["FLASKY_MAX_MESSAGE_BYTES"] = 50_000
    recipients = [*_people(2), Recipient("a@example.com", {"name": "x" * 50_000})]
    with pytest.raises(InvalidEmail) as caught:
        send_bulk("News", "mail/new_user", recipients)
    assert caught.value.field == "recipients[2].context"
    assert "over the limit of 50,000 bytes (FLASKY_MAX_MESSAGE_BYTES)" in caught.value.reason
    assert _count() == 0 and published == []


def test_an_empty_bulk_writes_nothing(published: list[tuple]) -> None:
    assert send_bulk("News", "mail/new_user", []) == []
    assert _count() == 0 and published == []


def test_a_key_used_twice_in_one_call_makes_one_email(published: list[tuple]) -> None:
    ids = send_bulk(
        "News",
        "mail/new_user",
        [
            Recipient("a@example.com", {"name": "A"}, "news:1"),
            Recipient("b@example.com", {"name": "B"}),
            Recipient("c@example.com", {"name": "C"}, "news:1"),
        ],
    )
    assert ids[0] == ids[2] != ids[1]
    assert _count() == 2
    assert published == [(ids[0], "bulk"), (ids[1], "bulk")]


def test_keys_used_before_return_the_earlier_emails_and_queue_nothing_for_them(
    published: list[tuple],
) -> None:
    earlier = send_email("a@example.com", "Hi", "mail/new_user", idempotency_key="k:a", name="A")
    first = send_bulk("News", "mail/new_user", [Recipient("b@example.com", {"name": "B"}, "k:b")])
    published.clear()
    ids = send_bulk(
        "News (again)",
        "mail/new_user",
        [
            Recipient("b@example.com", {"name": "B"}, "k:b"),
            Recipient("c@example.com", {"name": "C"}, "k:c"),
            Recipient("a@example.com", {"name": "A"}, "k:a"),
        ],
    )
    assert ids[0] == first[0] and ids[2] == earlier and ids[1] not in (first[0], earlier)
    assert _count() == 3
    assert published == [(ids[1], "bulk")]
    row = db.session.get(Email, ids[0])
    assert row is not None and row.subject == "[Flasky] News"


def test_nothing_is_committed_by_the_call(app: Flask) -> None:
    with app.app_context():
        send_bulk("News", "mail/new_user", _people(3))
        db.session.rollback()
        assert _count() == 0


def test_the_rows_are_inserted_a_thousand_per_statement(published: list[tuple]) -> None:
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        ids = send_bulk("News", "mail/new_user", _people(2500))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(ids) == 2500 == _count()
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 3, f"{len(inserts)} INSERT statements for 2,500 rows"
