"""web/outbox/checks.py: every argument of `send_email()` checked, refused naming the argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from web.outbox import checks
from web.outbox.checks import AttachmentInput, InvalidEmail

NOW = datetime(2030, 1, 1, 12, 0)  # naive UTC, as the outbox stores times


def _refused(field: str, call, *args: object) -> str:
    """The reason `call(*args)` gives; it must raise InvalidEmail naming `field`."""
    with pytest.raises(InvalidEmail) as raised:
        call(*args)
    assert raised.value.field == field
    assert str(raised.value) == f"{field}: {raised.value.reason}"
    return raised.value.reason


def test_invalid_email_is_a_value_error() -> None:
    assert issubclass(InvalidEmail, ValueError)


def test_one_address_or_several_come_back_as_a_list() -> None:
    assert checks.addresses("to", "Ada <ada@EXAMPLE.com>", required=True) == [
        "Ada <ada@example.com>"
    ]
    assert checks.addresses("cc", ("a@example.com", "b@example.com"), required=False) == [
        "a@example.com",
        "b@example.com",
    ]
    assert checks.addresses("cc", None, required=False) == []
    assert checks.addresses("bcc", iter(["c@example.com"]), required=False) == ["c@example.com"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("to", [], "at least one address is needed"),
        ("to", None, "at least one address is needed"),
        ("to", b"ada@example.com", "expected an address or a list of them"),
        ("to", 42, "expected an address or a list of them"),
        ("cc", ["ok@example.com", 7], "an address must be text, got 7"),
        ("cc", ["ok@example.com", "bad@@example.com"], "not a single email address"),
        ("bcc", "x@example.com\r\nSubject: hi", "line breaks or control characters"),
    ],
)
def test_bad_addresses_are_refused_naming_the_argument(
    field: str, value: object, reason: str
) -> None:
    assert reason in _refused(field, lambda: checks.addresses(field, value, required=True))


def test_reply_to_is_one_address_or_none() -> None:
    assert checks.reply_to(None) is None
    assert checks.reply_to("help@example.com") == "help@example.com"
    assert "expected one address" in _refused("reply_to", checks.reply_to, ["a@example.com"])
    assert "not a valid email address" in _refused("reply_to", checks.reply_to, "nobody")


def test_a_subject_is_one_line_of_text_without_encoded_words() -> None:
    assert checks.subject("Hello 张伟") == "Hello 张伟"
    assert "line breaks" in _refused("subject", checks.subject, "Hi\nBcc: victim@example.com")
    assert "must be text" in _refused("subject", checks.subject, None)
    assert "RFC 2047 encoded words" in _refused("subject", checks.subject, "=?utf-8?q?hi?=")


def test_attachments_come_back_checked_and_in_order() -> None:
    items = [
        ("report.pdf", "Application/PDF", b"%PDF"),
        [" notes.txt ", "text/plain", bytearray(b"hi")],
        ("张伟.csv", "text/csv", memoryview(b"a,b")),
    ]
    assert checks.attachments(items, max_total_bytes=9) == [
        AttachmentInput("report.pdf", "application/pdf", b"%PDF"),
        AttachmentInput("notes.txt", "text/plain", b"hi"),
        AttachmentInput("张伟.csv", "text/csv", b"a,b"),
    ]
    assert checks.attachments((), max_total_bytes=0) == []


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        ("a.pdf", "expected a list of (filename, content_type, bytes)"),
        ([("a.pdf", b"%PDF")], "item 1 is not (filename, content_type, bytes)"),
        ([("", "text/plain", b"x")], "item 1: the filename must be non-empty text"),
        ([("../etc/passwd", "text/plain", b"x")], "item 1: the filename must not contain"),
        ([("a\\b.txt", "text/plain", b"x")], "the filename must not contain control characters"),
        ([("a\r\nb.txt", "text/plain", b"x")], "the filename must not contain control characters"),
        ([("a" * 256, "text/plain", b"x")], "item 1: the filename is over 255 characters"),
        ([("a.pdf", "pdf", b"x")], "item 1: the content type must look like 'application/pdf'"),
        ([("a.txt", "text/plain; charset=utf-8", b"x")], "the content type must look like"),
        ([("a.txt", "text/plain", "hello")], "item 1: the content must be bytes, got str"),
        (
            [("a", "text/plain", b"x"), ("b", "text/plain", b"y" * 10)],
            "11 bytes in all, over the limit of 10 bytes (FLASKY_MAX_ATTACHMENT_BYTES)",
        ),
    ],
)
def test_bad_attachments_are_refused_with_the_item_and_the_reason(
    items: object, reason: str
) -> None:
    assert reason in _refused("attachments", checks.attachments, items, 10)


def test_send_at_is_stored_as_naive_utc_and_a_past_time_means_now() -> None:
    paris = datetime(2031, 6, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))  # 06:00 UTC (summer)
    assert checks.send_at(paris, NOW) == datetime(2031, 6, 1, 6, 0)
    assert checks.send_at(NOW.replace(tzinfo=UTC) + timedelta(seconds=1), NOW) == datetime(
        2030, 1, 1, 12, 0, 1
    )
    assert checks.send_at(NOW.replace(tzinfo=UTC), NOW) is None  # not after now: at once
    assert checks.send_at(datetime(2000, 1, 1, tzinfo=UTC), NOW) is None
    assert checks.send_at(None, NOW) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (datetime(2030, 1, 1, 8, 0), "must be timezone-aware"),  # naive: which 8 a.m.?
        ("2030-01-01T08:00:00Z", "expected a datetime"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "out of range in UTC"),
        (datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=1))), "out of range"),
    ],
)
def test_a_bad_send_at_is_refused(value: object, reason: str) -> None:
    assert reason in _refused("send_at", checks.send_at, value, NOW)


def test_priority_is_one_of_three() -> None:
    assert [checks.priority(p) for p in ("high", "normal", "bulk")] == ["high", "normal", "bulk"]
    reason = _refused("priority", checks.priority, "urgent")
    assert reason == "must be one of 'high', 'normal', 'bulk', got 'urgent'"


def test_an_idempotency_key_is_short_printable_text() -> None:
    assert checks.idempotency_key(None) is None
    assert checks.idempotency_key("new-user:42") == "new-user:42"
    assert checks.idempotency_key("k" * 255) == "k" * 255
    assert "non-empty text" in _refused("idempotency_key", checks.idempotency_key, " ")
    assert "non-empty text" in _refused("idempotency_key", checks.idempotency_key, 42)
    assert "control characters" in _refused("idempotency_key", checks.idempotency_key, "a\nb")
    assert "at most 255" in _refused("idempotency_key", checks.idempotency_key, "k" * 256)
