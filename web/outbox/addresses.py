"""Checking email addresses and header values before they reach the outbox."""

from __future__ import annotations

import unicodedata
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email

# Characters that may never appear in a header value: they could end the header (CR, LF) or
# confuse the parsers on the way (NUL and the other C0/C1 controls).
_FORBIDDEN_CATEGORIES = {"Cc", "Cs"}
# A display name holding one of these must be quoted (RFC 5322 "specials").
_SPECIALS = set('()<>[]:;@\\,."')


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
    """Return one mailbox (`a@b` or `Name <a@b>`) in the form the outbox stores; or ValueError.

    The address is checked by email-validator without any DNS lookup (deliverability is the
    SMTP server's answer), and its domain is kept in ASCII (IDNA) so that SMTP can carry it.
    Addresses whose local part needs SMTPUTF8 are refused: not every server accepts them.
    The display name is kept as written, quoted if needed; Flask-Mail encodes it (RFC 2047)
    when the message is built, so "张伟 <zhang@example.com>" arrives readable.
    """
    check_header_value("an email address", value)
    value = value.strip()
    mailboxes = getaddresses([value])
    if len(mailboxes) != 1:
        raise ValueError(f"not a single email address: {value!r}")
    name, address = mailboxes[0]
    # getaddresses() repairs what it cannot parse; accept only what it took as it was written.
    if not address or not (value == address or value.endswith(f"<{address}>")):
        raise ValueError(f"not a valid email address: {value!r}")
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {value!r} ({exc})") from None
    return _mailbox(name, checked.ascii_email or checked.normalized)


def bare_address(mailbox: str) -> str:
    """The `a@b` of a stored mailbox, for the SMTP envelope."""
    return getaddresses([mailbox])[0][1]


def _mailbox(name: str, address: str) -> str:
    if not name:
        return address
    if _SPECIALS.intersection(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"
