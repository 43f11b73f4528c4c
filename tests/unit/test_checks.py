"""web/outbox/checks.py: every argument of `send_email()` checked, refused naming the argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from web.models import Attachment, Email
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
    assert checks.subject("Hello 张伟", "[Flasky]") == "[Flasky] Hello 张伟"
    assert checks.subject("Hello", "") == "Hello"
    for value, reason in [
        ("Hi\nBcc: victim@example.com", "line breaks"),
        (None, "must be text"),
        ("=?utf-8?q?hi?=", "RFC 2047 encoded words"),
        # Shown as "Your invoice exe.pdf" by a mail reader; the bidi controls are refused.
        ("Your invoice \u202efdp.exe", "(U+202E RIGHT-TO-LEFT OVERRIDE)"),
        ("\u2067Hi", "(U+2067 RIGHT-TO-LEFT ISOLATE)"),
    ]:
        assert reason in _refused("subject", checks.subject, value, "[Flasky]")


def test_a_subject_with_its_prefix_fits_the_column() -> None:
    longest = "s" * (checks.MAX_SUBJECT_LENGTH - len("[Flasky] "))
    assert len(checks.subject(longest, "[Flasky]")) == checks.MAX_SUBJECT_LENGTH
    reason = _refused("subject", checks.subject, longest + "s", "[Flasky]")
    assert reason == "with the prefix '[Flasky] ' it is 999 characters, over the limit of 998"


def test_attachments_come_back_checked_and_in_order() -> None:
    items = [
        ("report.pdf", "Application/PDF", b"%PDF"),
        ["notes 2026.txt", "text/plain", bytearray(b"hi")],
        ("张伟.csv", "text/csv", memoryview(b"a,b")),
        ("a" * checks.MAX_FILENAME_LENGTH, "application/octet-stream", b""),
    ]
    assert checks.attachments(items) == [
        AttachmentInput("report.pdf", "application/pdf", b"%PDF"),
        AttachmentInput("notes 2026.txt", "text/plain", b"hi"),
        AttachmentInput("张伟.csv", "text/csv", b"a,b"),
        AttachmentInput("a" * checks.MAX_FILENAME_LENGTH, "application/octet-stream", b""),
    ]
    assert checks.attachments(()) == []


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        ("a.pdf", "expected a list of (filename, content_type, bytes)"),
        ([("a.pdf", b"%PDF")], "item 1 is not (filename, content_type, bytes)"),
        ([("", "text/plain", b"x")], "item 1: the filename must be non-empty text"),
        ([(None, "text/plain", b"x")], "item 1: the filename must be non-empty text"),
        ([("../etc/passwd", "text/plain", b"x")], "item 1: the filename must not contain"),
        ([("a\\b.txt", "text/plain", b"x")], "the filename must not contain any of"),
        ([("a\r\nb.txt", "text/plain", b"x")], "the filename must not contain control characters"),
        ([("a" * 256, "text/plain", b"x")], "item 1: the filename is over 255 characters"),
        ([("a.pdf", "pdf", b"x")], "item 1: the content type must look like 'application/pdf'"),
        ([("a.txt", "text/plain; charset=utf-8", b"x")], "the content type must look like"),
        ([("a.txt", "text/plain", "hello")], "item 1: the content must be bytes, got str"),
    ],
)
def test_bad_attachments_are_refused_with_the_item_and_the_reason(
    items: object, reason: str
) -> None:
    assert reason in _refused("attachments", checks.attachments, items)


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        # Shown as "invoiceexe.jpg", saved as an executable.
        ("invoice\u202egpj.exe", "control characters (U+202E RIGHT-TO-LEFT OVERRIDE)"),
        ("report\u200b.pdf", "control characters (U+200B ZERO WIDTH SPACE)"),
        ("..", "must not start or end with a dot or white space"),
        (".", "must not start or end with a dot or white space"),
        (".bashrc", "must not start or end with a dot or white space"),
        ("invoice.pdf.", "must not start or end with a dot or white space"),  # Windows drops it
        (" a.txt", "must not start or end with a dot or white space"),
        ("a.txt\u3000", "must not start or end with a dot or white space"),
        ("C:evil.exe", "must not contain any of"),  # a drive, or an NTFS stream
        ("a/b.txt", "must not contain any of"),
        ('say "hi".txt', "must not contain any of"),
        ("what?.txt", "must not contain any of"),
        ("a|b.txt", "must not contain any of"),
        ("CON", "a device name on Windows"),
        ("nul.txt", "a device name on Windows"),
        ("Com1.tar.gz", "a device name on Windows"),
    ],
)
def test_a_filename_is_one_that_every_reader_saves_as_shown(filename: str, reason: str) -> None:
    refused = _refused("attachments", checks.attachments, [(filename, "text/plain", b"x")])
    assert refused.startswith("item 1: the filename ") and reason in refused


def test_the_limits_are_the_sizes_of_the_columns() -> None:
    """A value over a column's size is refused by PostgreSQL with an error that aborts the
    caller's transaction; the checks refuse it first."""
    assert Email.subject.type.length == checks.MAX_SUBJECT_LENGTH
    assert Email.idempotency_key.type.length == checks.MAX_IDEMPOTENCY_KEY_LENGTH
    assert Attachment.filename.type.length == checks.MAX_FILENAME_LENGTH
    assert Attachment.content_type.type.length == checks.MAX_CONTENT_TYPE_LENGTH
    longest = "a" * 127 + "/" + "b" * 127
    assert len(longest) == checks.MAX_CONTENT_TYPE_LENGTH
    assert checks.attachments([("a", longest, b"")])[0].content_type == longest
    assert "content type" in _refused(
        "attachments", checks.attachments, [("a", longest + "b", b"")]
    )


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
    assert "U+202E" in _refused("idempotency_key", checks.idempotency_key, "user:\u202e24")
    assert "at most 255" in _refused("idempotency_key", checks.idempotency_key, "k" * 256)
