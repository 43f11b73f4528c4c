"""Checking email addresses and header values before they reach the outbox."""

from __future__ import annotations

import unicodedata
from email.utils import getaddresses

# Characters that may never appear in a header value: they could end the header (CR, LF) or
# confuse the parsers on the way (NUL and the other C0/C1 controls).
_FORBIDDEN_CATEGORIES = {"Cc", "Cs"}


def has_control_characters(value: str) -> bool:
    """True if `value` holds a control character, a lone surrogate or a line separator."""
    return any(
        unicodedata.category(ch) in _FORBIDDEN_CATEGORIES or ch in "\u2028\u2029" for ch in value
    )


def check_header_value(name: str, value: str) -> str:
    """Return `value` if it can go into a header as it is; raise ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    if has_control_characters(value):
        raise ValueError(f"{name} must not contain line breaks or control characters")
    return value


def check_address(value: str) -> str:
    """Return the address if it is a single plausible mailbox (`a@b` or `Name <a@b>`).

    This does not try to implement RFC 5322; it refuses what would break or inject headers,
    and what is clearly not one address. Deliverability is the SMTP server's answer.
    """
    check_header_value("an email address", value)
    value = value.strip()
    mailboxes = getaddresses([value])
    if len(mailboxes) != 1:
        raise ValueError(f"not a single email address: {value!r}")
    local, at, domain = mailboxes[0][1].rpartition("@")
    if not (local and at and domain) or any(ch.isspace() for ch in local + domain):
        raise ValueError(f"not a valid email address: {value!r}")
    return value
