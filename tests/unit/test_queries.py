"""web/outbox/queries.py: the counts, ages and pages the dashboard and the CLI share.

On SQLite in memory; the dashboard and `flask outbox` show the same on SQLite and PostgreSQL
in tests/test_admin.py and tests/test_outbox_cli.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from tests.unit.outbox_rows import add_row
from web.extensions import db
from web.models import Attachment, Email
from web.outbox import queries
from web.outbox.queries import AttachmentInfo
from web.outbox.search import EmailFilter

NOW = datetime(2030, 1, 1, 12, 0)


def test_an_empty_outbox_counts_zero_everywhere(app_context: Flask) -> None:
    stats = queries.stats(NOW)
    assert stats.counts == {
        "queued": 0, "sending": 0, "retrying": 0, "sent": 0, "failed": 0, "cancelled": 0
    }  # fmt: skip
    assert list(stats.counts) == list(queries.STATUSES)
    assert (stats.scheduled, stats.oldest_undelivered) == (0, None)


def test_counts_per_status_and_the_age_of_the_oldest_due_undelivered_email(
    app_context: Flask,
) -> None:
    add_row(created_at=NOW - timedelta(minutes=3))
    add_row(status="retrying", created_at=NOW - timedelta(hours=2))  # the oldest undelivered
    add_row(status="sending", created_at=NOW - timedelta(minutes=1))
    add_row(status="sent", created_at=NOW - timedelta(days=3), sent_at=NOW)  # delivered: no age
    add_row(status="failed", created_at=NOW - timedelta(days=4))  # given up: no age either
    stats = queries.stats(NOW)
    assert stats.counts == {
        "queued": 1, "sending": 1, "retrying": 1, "sent": 1, "failed": 1, "cancelled": 0
    }  # fmt: skip
    assert stats.scheduled == 0
    assert stats.oldest_undelivered == timedelta(hours=2)


def test_a_scheduled_email_is_counted_apart_and_late_only_from_its_send_at(
    app_context: Flask,
) -> None:
    add_row(created_at=NOW - timedelta(days=1), send_at=NOW + timedelta(hours=1))  # not due
    assert queries.stats(NOW).scheduled == 1
    assert queries.stats(NOW).counts["queued"] == 1
    assert queries.stats(NOW).oldest_undelivered is None  # not late: not due yet
    later = NOW + timedelta(hours=1, minutes=5)
    assert queries.stats(later).scheduled == 0
    assert queries.stats(later).oldest_undelivered == timedelta(minutes=5)  # not a day and more


def test_an_email_created_a_moment_after_now_is_not_a_negative_age(app_context: Flask) -> None:
    add_row(created_at=NOW + timedelta(seconds=2))
    assert queries.stats(NOW).oldest_undelivered == timedelta(0)


def test_pages_are_newest_first_and_a_page_out_of_range_is_the_nearest_real_one(
    app_context: Flask,
) -> None:
    ids = [add_row(created_at=NOW - timedelta(minutes=10 - n)) for n in range(5)]
    newest_first = ids[::-1]
    first = queries.email_page(1, 2, now=NOW)
    assert [e.id for e in first.items] == newest_first[:2]
    assert (first.total, first.pages, first.has_prev, first.has_next) == (5, 3, False, True)
    last = queries.email_page(99, 2, now=NOW)
    assert (last.page, [e.id for e in last.items]) == (3, newest_first[4:])
    assert (last.has_prev, last.has_next) == (True, False)
    assert queries.email_page(-4, 2, now=NOW).page == 1


@pytest.mark.parametrize(("rows", "pages"), [(0, 1), (2, 1), (3, 1), (4, 2)])
def test_the_first_page_counts_right_at_the_edge_of_a_page(
    app_context: Flask, rows: int, pages: int
) -> None:
    for _ in range(rows):
        add_row(created_at=NOW)
    first = queries.email_page(1, 3, now=NOW)
    assert (first.total, first.pages, len(first.items)) == (rows, pages, min(rows, 3))


def test_a_first_page_that_is_not_full_is_read_once(app_context: Flask) -> None:
    """No index serves a substring search: its count would read the whole table again."""
    add_row(created_at=NOW, subject="Your invoice")
    add_row(created_at=NOW, subject="Welcome")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        found = queries.email_page(1, 50, EmailFilter(query="invoice"), now=NOW)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert (found.total, [e.subject for e in found.items]) == (1, ["Your invoice"])
    assert len(statements) == 1, statements


def test_an_empty_list_is_one_empty_page(app_context: Flask) -> None:
    page = queries.email_page(3, 20, now=NOW)
    assert (page.page, page.pages, page.total, page.items) == (1, 1, 0, [])


def test_the_list_filters_by_status_or_scheduled(app_context: Flask) -> None:
    due = add_row(created_at=NOW - timedelta(minutes=2))
    scheduled = add_row(created_at=NOW - timedelta(minutes=1), send_at=NOW + timedelta(days=1))
    failed = add_row(status="failed", created_at=NOW)

    def listed(status: str | None) -> list[int]:
        return [e.id for e in queries.recent_emails(10, EmailFilter(status=status), now=NOW)]

    assert listed("queued") == [scheduled, due]
    assert listed("scheduled") == [scheduled]
    assert listed("failed") == [failed]
    assert listed(None) == [failed, scheduled, due]
    assert queries.email_page(1, 10, EmailFilter(status="scheduled"), now=NOW).total == 1
    email = queries.get_email(scheduled)
    assert queries.is_scheduled(email, NOW) and not queries.is_scheduled(email, NOW + timedelta(2))


def test_the_list_leaves_the_bodies_unloaded(app_context: Flask) -> None:
    add_row(text_body="a large body")
    (email,) = queries.recent_emails(1)
    assert {"text_body", "html_body"} <= set(db.inspect(email).unloaded)


def test_attachments_are_listed_with_their_size_never_their_content(app_context: Flask) -> None:
    email_id = add_row(
        attachments=(("b.pdf", "application/pdf", b"x" * 1536), ("a.txt", "text/plain", b"hi"))
    )
    assert queries.attachments_of(email_id) == [
        AttachmentInfo("b.pdf", "application/pdf", 1536),
        AttachmentInfo("a.txt", "text/plain", 2),
    ]
    assert queries.attachments_of(email_id)[0].size_text == "1.5 KiB (1,536 bytes)"
    assert queries.email_status(email_id) == "queued" and queries.email_status(999) is None


def test_purge_deletes_only_sent_emails_older_than_the_age_with_their_attachments(
    app_context: Flask,
) -> None:
    now = queries.utcnow()
    old = add_row(status="sent", sent_at=now - timedelta(days=31), attachments=(("a", "t/p", b""),))
    recent = add_row(status="sent", sent_at=now - timedelta(days=29))
    failed = add_row(status="failed", created_at=now - timedelta(days=90))
    assert queries.purge(timedelta(days=30)) == queries.Purged(sent=1, cancelled=0)
    db.session.commit()
    assert set(db.session.scalars(select(Email.id))) == {recent, failed}
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert old not in set(db.session.scalars(select(Email.id)))


def test_purge_deletes_cancelled_emails_by_the_time_they_were_cancelled(
    app_context: Flask,
) -> None:
    now = queries.utcnow()
    # Created long ago for a date long ahead: the cancel's time counts, not the creation's.
    long_ago, far_ahead = now - timedelta(days=90), now + timedelta(days=365)
    old = add_row(status="cancelled", created_at=long_ago, send_at=far_ahead, updated_at=long_ago)
    recent = add_row(status="cancelled", created_at=long_ago, send_at=far_ahead, updated_at=now)
    scheduled = add_row(status="queued", created_at=long_ago, send_at=far_ahead)
    assert queries.purge(timedelta(days=30)) == queries.Purged(sent=0, cancelled=1)
    db.session.commit()
    assert set(db.session.scalars(select(Email.id))) == {recent, scheduled}
    assert old not in set(db.session.scalars(select(Email.id)))


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (None, "none"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(seconds=59.9), "59 s"),
        (timedelta(minutes=3, seconds=10), "3 min"),
        (timedelta(hours=2, minutes=5, seconds=3), "2 h 5 min"),
        (timedelta(days=4, hours=3, minutes=59), "4 d 3 h"),
    ],
)
def test_ages_read_well(age: timedelta | None, text: str) -> None:
    assert queries.describe_age(age) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (900, "900 bytes"),
        (1536, "1.5 KiB (1,536 bytes)"),
        (2 * 1024 * 1024, "2.0 MiB (2,097,152 bytes)"),
    ],
)
def test_sizes_read_well(size: int, text: str) -> None:
    assert queries.describe_size(size) == text


def test_times_are_iso_8601_utc() -> None:
    assert queries.describe_time(datetime(2030, 1, 2, 3, 4, 5)) == "2030-01-02T03:04:05Z"
    assert queries.describe_time(None) == ""
