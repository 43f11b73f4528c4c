"""Checks on every argument of `send_email()`, before anything is rendered or written.

Each check returns the value in the form the outbox stores, or raises `InvalidEmail` naming
the argument, so a caller can show the reason to a person and nothing half-made is stored.
Every text that a person sees (the subject, display names, filenames) and the idempotency key
follow the name form's character rule (`web.outbox.addresses.control_character`), and every
value fits its column: over it, PostgreSQL raises an error that aborts the caller's whole
transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from web.outbox.addresses import check_address, check_header_value, control_character, describe
from web.outbox.priority import Priority

# An ASCII subject goes into the header as it is, and readers would decode this as an RFC 2047
# encoded word ("=?charset?Q?text?=").
_ENCODED_WORD = re.compile(r"=\?.*\?=")
# type/subtype, as in RFC 6838 (no parameters: the worker adds what the part needs); at most
# 127 characters each, so at most the column's 255 in all.
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# The sizes of the columns (web/models.py); 998 is also the longest line RFC 5322 allows.
MAX_SUBJECT_LENGTH = 998
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_FILENAME_LENGTH = 255
MAX_CONTENT_TYPE_LENGTH = 255
# A filename must be saved by every mail reader as it is shown, on every system: Windows
# refuses these characters (":" names a drive, "C:evil.exe", or an NTFS stream), "/" and "\\"
# separate folders.
_FILENAME_RESERVED = set('<>:"/\\|?*')
# ... and these names, with any extension, are devices there ("nul.txt" is the null device).
_WINDOWS_DEVICE = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?", re.IGNORECASE)


class InvalidEmail(ValueError):
    """An argument of `send_email()` is not acceptable; `field` names it. Nothing was written."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class AttachmentInput:
    filename: str
    content_type: str
    data: bytes


def addresses(field: str, value: str | Iterable[str] | None, *, required: bool) -> list[str]:
    """One address or several, each checked (see web.addresses.check_address)."""
    if value is None:
        items: list[object] = []
    elif isinstance(value, str):
        items = [value]
    elif isinstance(value, bytes) or not isinstance(value, Iterable):
        raise InvalidEmail(field, f"expected an address or a list of them, got {value!r}")
    else:
        items = list(value)
    if required and not items:
        raise InvalidEmail(field, "at least one address is needed")
    checked = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidEmail(field, f"an address must be text, got {item!r}")
        try:
            checked.append(check_address(item))
        except ValueError as exc:
            raise InvalidEmail(field, str(exc)) from None
    return checked


def reply_to(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEmail("reply_to", f"expected one address, got {value!r}")
    [address] = addresses("reply_to", value, required=True)
    return address


def subject(value: str, prefix: str) -> str:
    """The subject as stored: `prefix` (FLASKY_MAIL_SUBJECT_PREFIX), a space, `value`."""
    try:
        check_header_value("the subject", value)
    except ValueError as exc:
        raise InvalidEmail("subject", str(exc)) from None
    if _ENCODED_WORD.search(value):
        raise InvalidEmail("subject", "must not contain RFC 2047 encoded words (=?...?=)")
    stored = f"{prefix} {value}" if prefix else value
    if len(stored) > MAX_SUBJECT_LENGTH:
        with_prefix = f"with the prefix {prefix + ' '!r} " if prefix else ""
        raise InvalidEmail(
            "subject",
            f"{with_prefix}it is {len(stored)} characters, over the limit of {MAX_SUBJECT_LENGTH}",
        )
    return stored


def attachments(items: Iterable[object]) -> list[AttachmentInput]:
    """`(filename, content_type, bytes)` items. Their size is checked with the message's, once
    it is rendered (`web.outbox.size`)."""
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidEmail("attachments", "expected a list of (filename, content_type, bytes)")
    checked = []
    for position, item in enumerate(items, start=1):
        if not (isinstance(item, tuple | list) and len(item) == 3):
            raise InvalidEmail(
                "attachments", f"item {position} is not (filename, content_type, bytes)"
            )
        filename, content_type, data = item
        checked.append(
            AttachmentInput(
                filename=_filename(position, filename),
                content_type=_content_type(position, content_type),
                data=_data(position, data),
            )
        )
    return checked


def _filename(position: int, value: object) -> str:
    def refused(reason: str) -> InvalidEmail:
        return InvalidEmail("attachments", f"item {position}: the filename {reason}")

    if not isinstance(value, str) or not value:
        raise refused("must be non-empty text")
    found = control_character(value)
    if found is not None:
        raise refused(f"must not contain control characters ({describe(found)})")
    if _FILENAME_RESERVED.intersection(value):
        raise refused(f"must not contain any of {''.join(sorted(_FILENAME_RESERVED))}")
    # ".." and "." name folders; ".name" is hidden; Windows drops a trailing dot or space, so
    # "a.pdf." would be saved under another name than the one shown.
    if value[0] == "." or value[-1] == "." or value[0].isspace() or value[-1].isspace():
        raise refused("must not start or end with a dot or white space")
    if _WINDOWS_DEVICE.fullmatch(value):
        raise refused(f"{value!r} is a device name on Windows")
    if len(value) > MAX_FILENAME_LENGTH:
        raise refused(f"is over {MAX_FILENAME_LENGTH} characters")
    return value


def _content_type(position: int, value: object) -> str:
    if not isinstance(value, str) or not _CONTENT_TYPE.fullmatch(value.lower()):
        raise InvalidEmail(
            "attachments",
            f"item {position}: the content type must look like 'application/pdf', got {value!r}",
        )
    return value.lower()


def _data(position: int, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidEmail(
            "attachments", f"item {position}: the content must be bytes, got {type(value).__name__}"
        )
    return bytes(value)


def send_at(value: datetime | None, now: datetime) -> datetime | None:
    """A timezone-aware time, returned as naive UTC; None (and any past time) means now."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidEmail("send_at", f"expected a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEmail(
            "send_at", "must be timezone-aware (for example datetime(..., tzinfo=UTC))"
        )
    try:
        at = value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before the first representable UTC time
        raise InvalidEmail("send_at", f"{value.isoformat()} is out of range in UTC") from None
    return at if at > now else None


def priority(value: str) -> str:
    try:
        return Priority(value).value
    except ValueError:
        known = ", ".join(repr(p.value) for p in Priority)
        raise InvalidEmail("priority", f"must be one of {known}, got {value!r}") from None


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmail("idempotency_key", "must be non-empty text")
    found = control_character(value)
    if found is not None:
        raise InvalidEmail(
            "idempotency_key", f"must not contain control characters ({describe(found)})"
        )
    if len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidEmail(
            "idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )
    return value
