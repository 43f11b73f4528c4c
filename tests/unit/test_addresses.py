"""web/outbox/addresses.py: one mailbox per address, stored so SMTP can carry it; no injection."""

from __future__ import annotations

import pytest

from web.models import Email
from web.outbox.addresses import (
    MAX_MAILBOX_LENGTH,
    bare_address,
    check_address,
    check_header_value,
    has_control_characters,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  ada@example.com ", "ada@example.com"),
        ("Ada Lovelace <ada@example.com>", "Ada Lovelace <ada@example.com>"),
        ("张伟 <zhang@example.com>", "张伟 <zhang@example.com>"),  # encoded when the mail is built
        ("ada@EXAMPLE.com", "ada@example.com"),  # the domain in lower case
        ("ada@bücher.example", "ada@xn--bcher-kva.example"),  # and in ASCII (IDNA)
        ('"Lovelace, Ada" <ada@example.com>', '"Lovelace, Ada" <ada@example.com>'),
        ("Dr. Ada <ada@example.com>", '"Dr. Ada" <ada@example.com>'),  # a special: quoted
    ],
)
def test_an_address_is_stored_as_smtp_can_carry_it(given: str, stored: str) -> None:
    assert check_address(given) == stored


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not an address", "not a valid email address"),
        ("root@localhost", "not a valid email address"),  # no dot in the domain
        ("bad@@example.com", "not a single email address"),
        ("a@example.com, b@example.com", "not a single email address"),
        ("admin@example.com\r\nBcc: victim@example.com", "line breaks or control characters"),
        ("ada@example.com\x00", "line breaks or control characters"),
        ("ada\u2028@example.com", "line breaks or control characters"),
        ("jörg@example.com", "not a valid email address"),  # would need SMTPUTF8
        ("Ada <ada@example.com> trailing", "not a single email address"),
        # The display name reads "Admin Support" but is "Admin \u202etroppuS".
        ("Admin \u202etroppuS <a@example.com>", r"control characters \(U\+202E RIGHT-TO-LEFT"),
        ("Ann\u200b <ann@example.com>", r"\(U\+200B ZERO WIDTH SPACE\)"),
        (f"{'n' * 303} <ann@example.com>", r"over 320 characters \(321\)"),
        # 316 characters as given, 323 stored with the domain in ASCII.
        (f"{'n' * 295} <ann@bücher.example>", r"over 320 characters \(323\)"),
    ],
)
def test_a_bad_address_is_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_address(value)


@pytest.mark.parametrize(
    ("mailbox", "address"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada Lovelace <ada@example.com>", "ada@example.com"),
        ('"Lovelace, Ada" <ada@example.com>', "ada@example.com"),
    ],
)
def test_the_envelope_gets_the_bare_address(mailbox: str, address: str) -> None:
    assert bare_address(mailbox) == address


@pytest.mark.parametrize(
    ("value", "has"),
    [
        ("plain text, with punctuation!", False),
        ("张伟 e\u0301", False),
        ("line\nbreak", True),
        ("carriage\rreturn", True),
        ("tab\there", True),
        ("nul\x00", True),
        ("delete\x7f", True),
        ("c1\x85control", True),
        ("lone \ud800 surrogate", True),
        ("line\u2028separator", True),
        ("paragraph\u2029separator", True),
        # Invisible format characters (Unicode category Cf): bidi controls and marks, zero-width
        # space, byte order mark, soft hyphen, tags.
        ("invoice\u202egpj.exe", True),
        ("\u2066isolate\u2069", True),
        ("mark\u200e", True),
        ("arabic\u061cmark", True),
        ("zero\u200bwidth", True),
        ("\ufeffbom", True),
        ("soft\u00adhyphen", True),
        ("tag\U000e0041", True),
        # The joiners are part of correct spelling (Persian, Indic) and of emoji sequences.
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", False),
        ("\U0001f469\u200d\U0001f4bb", False),
    ],
)
def test_control_characters_are_found(value: str, has: bool) -> None:
    assert has_control_characters(value) is has


def test_a_mailbox_up_to_320_characters_is_the_size_of_the_columns() -> None:
    assert MAX_MAILBOX_LENGTH == Email.reply_to.type.length == Email.sender.type.length
    name = "n" * (MAX_MAILBOX_LENGTH - len(" <ann@example.com>"))
    assert check_address(f"{name} <ann@example.com>") == f"{name} <ann@example.com>"


def test_a_header_value_must_be_text_without_line_breaks() -> None:
    assert check_header_value("the subject", "Hello 张伟") == "Hello 张伟"
    with pytest.raises(ValueError, match="the subject must not contain line breaks"):
        check_header_value("the subject", "Hi\r\nBcc: victim@example.com")
    with pytest.raises(ValueError, match="the subject must be text, got bytes"):
        check_header_value("the subject", b"Hi")  # type: ignore[arg-type]
