"""web/outbox/search.py: the filter read from a form or the CLI, and the emails it finds.

On SQLite in memory; the same searches run on SQLite and PostgreSQL, through the dashboard and
`flask outbox list`, in tests/integration/test_admin_search.py and test_outbox_cli.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.unit.outbox_rows import add_row
from web.extensions import db
from web.models import Email
from web.outbox import search
from web.outbox.search import MAX_ID, MAX_QUERY_LENGTH, EmailFilter, parse_filter

NOW = datetime(2030, 1, 1, 12, 0)


def found(email_filter: EmailFilter, now: datetime = NOW) -> list[int]:
    statement = search.apply(select(Email.id), email_filter, now).order_by(Email.id)
    return list(db.session.scalars(statement))


def text(query: str) -> list[int]:
    return found(EmailFilter(query=query))


# --- the parser -------------------------------------------------------------------------------


def test_empty_values_are_no_filter() -> None:
    assert parse_filter(None, None, None) == search.ParsedFilter(EmailFilter())
    assert parse_filter("", "", "   ").filter == search.EVERY_EMAIL


def test_every_status_scheduled_and_every_priority_are_accepted() -> None:
    for status in (*search.FILTERS,):
        assert parse_filter(status, None, None).filter.status == status
    assert "cancelled" in search.FILTERS and "scheduled" in search.FILTERS
    for priority in ("high", "normal", "bulk"):
        assert parse_filter(None, priority, None).filter.priority == priority


def test_the_query_is_stripped_and_kept_as_written() -> None:
    assert parse_filter(None, None, "  Ann O'Neil \t").filter.query == "Ann O'Neil"


@pytest.mark.parametrize(
    ("status", "priority", "message"),
    [
        ("lost", None, "There is no status 'lost'; the statuses are queued, sending, "),
        ("<b>x</b>", None, "There is no status '<b>x</b>'"),
        ("FAILED", None, "There is no status 'FAILED'"),
        (
            None,
            "urgent",
            "There is no priority 'urgent'; the priorities are high, normal and bulk.",
        ),
    ],
)
def test_an_unknown_status_or_priority_is_left_out_with_a_clear_message(
    status: str | None, priority: str | None, message: str
) -> None:
    parsed = parse_filter(status, priority, "ann")
    assert parsed.filter == EmailFilter(query="ann")  # the rest of the filter stays
    (problem,) = parsed.problems
    assert problem.startswith(message)


def test_a_query_too_long_or_with_control_characters_is_left_out() -> None:
    long = parse_filter("failed", None, "x" * 10_000)
    assert long.filter == EmailFilter(status="failed")
    assert long.problems == ("A search is at most 320 characters; this one has 10,000.",)
    assert parse_filter(None, None, "x" * MAX_QUERY_LENGTH).problems == ()
    for query in ("a\x00b", "a\nb", "a\u2028b"):
        parsed = parse_filter(None, None, query)
        assert parsed.filter.query == ""
        assert parsed.problems == ("A search cannot contain control characters.",)


def test_the_filter_as_link_arguments_json_and_words() -> None:
    every = EmailFilter(status="failed", priority="high", query="ann")
    assert every.args() == {"status": "failed", "priority": "high", "q": "ann"}
    assert every.as_json() == {"status": "failed", "priority": "high", "query": "ann"}
    assert every.describe() == "failed, priority high, matching 'ann'"
    assert EmailFilter().args() == {} and EmailFilter().as_json() == {}
    assert EmailFilter().describe() == "every email"
    assert search.filter_from_args({"q": "x", "page": "2"}).filter == EmailFilter(query="x")


# --- the search -------------------------------------------------------------------------------


def test_status_priority_and_scheduled_filter_and_combine(app_context: Flask) -> None:
    due = add_row(priority="high")
    later = add_row(send_at=NOW + timedelta(hours=1), priority="bulk")
    failed = add_row(status="failed", priority="high")
    cancelled = add_row(status="cancelled", send_at=NOW + timedelta(hours=1))
    assert found(EmailFilter()) == [due, later, failed, cancelled]
    assert found(EmailFilter(status="queued")) == [due, later]
    assert found(EmailFilter(status="scheduled")) == [later]
    assert found(EmailFilter(status="scheduled"), NOW + timedelta(hours=2)) == []
    assert found(EmailFilter(status="cancelled")) == [cancelled]
    assert found(EmailFilter(priority="high")) == [due, failed]
    assert found(EmailFilter(status="failed", priority="high")) == [failed]
    assert found(EmailFilter(status="failed", priority="bulk")) == []


def test_a_number_or_hash_number_finds_the_id_alone(app_context: Flask) -> None:
    first = add_row(subject=f"[Flasky] Order 1{0}")
    add_row(recipients=[f"user{first}@example.com"])
    assert text(str(first)) == [first]
    assert text(f"#{first}") == [first]
    assert text(f"#000{first}") == [first]
    assert text("#0") == [] and text("424242") == []


@pytest.mark.parametrize("query", [str(MAX_ID + 1), "9" * 300, "#" + "1" * 50])
def test_an_id_larger_than_the_column_finds_nothing_and_never_reaches_the_database(
    app_context: Flask, query: str
) -> None:
    add_row()
    assert text(query) == []
    (condition,) = search.conditions(EmailFilter(query=query), NOW)
    assert str(condition) == "false"


def test_text_finds_recipients_subject_and_idempotency_key_in_any_case(
    app_context: Flask,
) -> None:
    ann = add_row(recipients=["Ann Lee <ann@example.com>", "bob@example.org"])
    subject = add_row(subject="[Flasky] Your Invoice 7")
    keyed = add_row(idempotency_key="invoice:ANN-7")
    add_row(recipients=["carol@example.com"], subject="[Flasky] Hello")
    assert text("ann@EXAMPLE.com") == [ann]
    assert text("bob@example.org") == [ann]
    assert text("ann lee") == [ann]
    assert text("invoice") == [subject, keyed]
    assert text("ann-7") == [keyed]
    assert text("nobody") == []


def test_like_wildcards_in_the_query_are_taken_literally(app_context: Flask) -> None:
    percent = add_row(subject="[Flasky] 100% off")
    underscore = add_row(idempotency_key="user_42")
    backslash = add_row(subject="[Flasky] C:\\path")
    add_row(subject="[Flasky] 100 off", idempotency_key="userx42")
    assert text("%") == [percent]
    assert text("100%") == [percent]
    assert text("_") == [underscore]
    assert text("r_4") == [underscore]
    assert text("\\") == [backslash]
    assert text("C:\\p") == [backslash]


def test_recipients_are_found_as_written_whatever_json_makes_of_them(app_context: Flask) -> None:
    """The recipients column is JSON: a display name with accents or quotes is stored escaped
    ("Jos\\u00e9", \\"), and still found by what a person types."""
    jose = add_row(recipients=["José Núñez <jose@example.com>"])
    quoted = add_row(recipients=['"Lee, Ann" <ann@example.com>'])
    assert text("José Núñez") == [jose]
    assert text('"Lee, Ann"') == [quoted]
    assert text("Lee, Ann") == [quoted]


def test_the_query_combines_with_status_and_priority(app_context: Flask) -> None:
    queued = add_row(recipients=["ann@example.com"])
    failed = add_row(recipients=["ann@example.com"], status="failed", priority="bulk")
    add_row(recipients=["bob@example.com"], status="failed", priority="bulk")
    assert found(EmailFilter(query="ann")) == [queued, failed]
    assert found(EmailFilter(status="failed", query="ann")) == [failed]
    assert found(EmailFilter(status="failed", priority="bulk", query="ann")) == [failed]
    assert found(EmailFilter(status="failed", priority="high", query="ann")) == []
    assert found(EmailFilter(status="failed", query=f"#{queued}")) == []
