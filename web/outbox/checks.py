"""Checks on every argument of `send_email()`, before anything is rendered or written.

Each check returns the value in the form the outbox stores, or raises `InvalidEmail` naming
the argument, so a caller can show the reason to a person and nothing half-made is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from web.outbox.addresses import check_address, check_header_value, has_control_characters
from web.outbox.priority import Priority

# An ASCII subject goes into the header as it is, and readers would decode this as an RFC 2047
# encoded word ("=?charset?Q?text?=").
_ENCODED_WORD = re.compile(r"=\?.*\?=")
# type/subtype, as in RFC 6838 (no parameters: the worker adds what the part needs).
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_FILENAME_LENGTH = 255


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


def subject(value: str) -> str:
    try:
        check_header_value("the subject", value)
    except ValueError as exc:
        raise InvalidEmail("subject", str(exc)) from None
    if _ENCODED_WORD.search(value):
        raise InvalidEmail("subject", "must not contain RFC 2047 encoded words (=?...?=)")
    return value


def attachments(items: Iterable[object], max_total_bytes: int) -> list[AttachmentInput]:
    """`(filename, content_type, bytes)` items; their total size at most `max_total_bytes`."""
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidEmail("attachments", "expected a list of (filename, content_type, bytes)")
    checked = []
    total = 0
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
        total += len(checked[-1].data)
    if total > max_total_bytes:
        raise InvalidEmail(
            "attachments",
            f"{total:,} bytes in all, over the limit of {max_total_bytes:,} bytes "
            "(FLASKY_MAX_ATTACHMENT_BYTES)",
        )
    return checked


def _filename(position: int, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmail("attachments", f"item {position}: the filename must be non-empty text")
    if has_control_characters(value) or "/" in value or "\\" in value:
        raise InvalidEmail(
            "attachments",
            f"item {position}: the filename must not contain control characters or slashes",
        )
    if len(value) > MAX_FILENAME_LENGTH:
        raise InvalidEmail(
            "attachments", f"item {position}: the filename is over {MAX_FILENAME_LENGTH} characters"
        )
    return value.strip()


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
    if has_control_characters(value):
        raise InvalidEmail("idempotency_key", "must not contain control characters")
    if len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidEmail(
            "idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )
    return value
