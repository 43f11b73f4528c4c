"""The size of an email as the worker sends it, known before the email is stored.

SMTP servers refuse a message over their size limit (a stock Postfix: 10,240,000 bytes), and
what counts is the message as sent, not its files: an attachment travels in base64, 4
characters for every 3 bytes and a line break after every 76 of them, a third larger; the
bodies travel as UTF-8 (8bit), every line ending in CRLF. `send_email` refuses an email whose
message would be over FLASKY_MAX_MESSAGE_BYTES, so that the caller hears it, not the worker.

The estimate is never below what the worker's code sends (worker/message.py; compared in
tests/unit/test_size.py) and close above: the bodies and the files are counted exactly, the
headers with room for their encoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from web.outbox.checks import AttachmentInput, InvalidEmail

# The header names, the headers that do not depend on the row (MIME-Version, Date, the parts'
# Content-Type and Content-Transfer-Encoding) and the boundary lines, with room to spare.
_FIXED_BYTES = 1024
# Per attachment: its part's headers and boundary lines, but for the filename.
_PART_BYTES = 180


def base64_size(length: int) -> int:
    """The bytes of `length` bytes in base64 with a CRLF after every 76 characters (every 57
    bytes of input), as the worker's email package writes them."""
    return 4 * -(-length // 3) + 2 * -(-length // 57)


def _text_size(text: str) -> int:
    """UTF-8 bytes, every line end becoming CRLF (a lone CR or LF gains a byte)."""
    lone_ends = text.count("\n") + text.count("\r") - 2 * text.count("\r\n")
    return len(text.encode("utf-8")) + lone_ends


def _header_size(value: str) -> int:
    """An upper bound for a header's value: ASCII, folded at 78 columns (3 bytes a fold); else
    RFC 2047 encoded words, 4/3 of the UTF-8 bytes in base64, plus "=?utf-8?b?...?=" and a
    fold for every 45 bytes: 5/3 of the bytes."""
    if value.isascii():
        return len(value) + 3 * (len(value) // 70 + 1)
    return 5 * len(value.encode("utf-8")) // 3 + 20


def _filename_size(filename: str) -> int:
    """A filename in its part's header: quoted, or percent-encoded when it is not ASCII
    (RFC 2231: 3 characters a byte), on one line."""
    return len(filename) + 2 if filename.isascii() else 3 * len(filename.encode("utf-8")) + 16


def encoded_size(row: Mapping[str, object], files: Sequence[AttachmentInput]) -> int:
    """The bytes of the message the worker builds for `row` (an `emails` row's fields, as
    `web.outbox.api.email_fields` makes them) with `files` attached."""
    headers = [
        row["subject"],
        row["sender"],
        row["reply_to"] or "",
        row["message_id"],
        ", ".join(row["recipients"]),  # type: ignore[arg-type]
        ", ".join(row["cc"] or ()),  # type: ignore[arg-type]
    ]
    return (
        _FIXED_BYTES
        + sum(_header_size(str(value)) for value in headers)
        + _text_size(str(row["text_body"]))
        + _text_size(str(row["html_body"]))
        + sum(
            _PART_BYTES
            + len(file.content_type)
            + _filename_size(file.filename)
            + base64_size(len(file.data))
            for file in files
        )
    )


def check_size(
    row: Mapping[str, object],
    files: Sequence[AttachmentInput],
    limit: int,
    *,
    context_field: str,
) -> None:
    """Raise `InvalidEmail` if the message would be over `limit` bytes: naming the attachments
    when there are any, else the context (`context_field`) whose bodies make it."""
    size = encoded_size(row, files)
    if size <= limit:
        return
    over = f"over the limit of {limit:,} bytes (FLASKY_MAX_MESSAGE_BYTES)"
    if files:
        file_bytes = sum(len(file.data) for file in files)
        raise InvalidEmail(
            "attachments",
            f"{file_bytes:,} bytes of files make a message of {size:,} bytes once encoded for "
            f"sending (base64 adds a third), {over}",
        )
    raise InvalidEmail(
        context_field,
        f"the rendered bodies make a message of {size:,} bytes once encoded for sending, {over}",
    )
