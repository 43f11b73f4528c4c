"""Checking email addresses and header values before they reach the outbox."""

from __future__ import annotations

import unicodedata
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email

# Characters that may never appear in a name, a header value or a filename, by Unicode
# category: controls (Cc: CR and LF could end a header, NUL and the other C0/C1 controls
# confuse the parsers on the way), lone surrogates (Cs: not text, UTF-8 cannot encode them),
# the line and paragraph separators (Zl, Zp), and the invisible format characters (Cf): the
# bidi controls make "invoice\u202egpj.exe" read "invoiceexe.jpg", and zero-width spaces, byte
# order marks, soft hyphens and tags make two different names look the same, or hide text.
_FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Cf", "Zl", "Zp"}
# Two format characters are part of correct spelling (Persian and Indic scripts) and of emoji
# sequences, and reorder nothing: the zero-width non-joiner and joiner.
_JOINERS = {"\u200c", "\u200d"}
# The longest mailbox the outbox stores: the size of the `reply_to` and `sender` columns, the
# classic limit of an address (a 64-character local part, "@", a 255-character domain).
MAX_MAILBOX_LENGTH = 320
# A display name holding one of these must be quoted (RFC 5322 "specials").
_SPECIALS = set('()<>[]:;@\\,."')


def control_character(value: str) -> str | None:
    """The first character of `value` that `_FORBIDDEN_CATEGORIES` refuses, or None."""
    for ch in value:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES and ch not in _JOINERS:
            return ch
    return None


def has_control_characters(value: str) -> bool:
    """True if `value` holds a control, format or line-separating character, or a lone
    surrogate (see `_FORBIDDEN_CATEGORIES`)."""
    return control_character(value) is not None


def describe(ch: str) -> str:
    """Name a character that cannot be shown: "U+202E RIGHT-TO-LEFT OVERRIDE"."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"


def check_header_value(name: str, value: str) -> str:
    """Return `value` if it can go into a header as it is; raise ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    found = control_character(value)
    if found is not None:
        raise ValueError(
            f"{name} must not contain line breaks or control characters ({describe(found)})"
        )
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
    mailbox = _mailbox(name, checked.ascii_email or checked.normalized)
    # Both forms: the stored one can be the longer (quotes, an IDNA domain), and the
    # configured sender is stored as it is written.
    length = max(len(value), len(mailbox))
    if length > MAX_MAILBOX_LENGTH:
        raise ValueError(
            f"the address is over {MAX_MAILBOX_LENGTH} characters ({length}): {value[:40]!r}..."
        )
    return mailbox


def bare_address(mailbox: str) -> str:
    """The `a@b` of a stored mailbox, for the SMTP envelope."""
    return getaddresses([mailbox])[0][1]


def _mailbox(name: str, address: str) -> str:
    if not name:
        return address
    if _SPECIALS.intersection(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"
