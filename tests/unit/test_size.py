"""web/outbox/size.py: the size of an email as the worker sends it, known before it is stored.

The estimate is compared with the bytes the worker's own code makes of the same row
(worker/message.py): never below them, and close above.
"""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from flask import Flask

from tests.unit.conftest import ADMIN
from web.outbox.checks import AttachmentInput, InvalidEmail
from web.outbox.size import check_size, encoded_size
from worker.claims import ClaimedEmail
from worker.message import build_message, message_bytes

ROW: dict[str, object] = {
    "recipients": [ADMIN],
    "cc": None,
    "reply_to": None,
    "sender": "Flasky Admin <flasky@example.com>",
    "subject": "[Flasky] Hello",
    "text_body": "Hello\n",
    "html_body": "<p>Hello</p>",
    "message_id": "<0123456789abcdef0123456789abcdef@example.com>",
}
CJK = "张伟报告"


def _sent_size(row: dict[str, object], files: list[AttachmentInput]) -> int:
    """The bytes the worker sends for this row (inside the app context)."""
    claimed = ClaimedEmail(
        id=1,
        attempts=0,
        bcc=None,
        created_at=datetime(2026, 11, 29, 12, 0),
        send_at=None,
        attachment_count=len(files),
        **row,  # type: ignore[arg-type]
    )
    files_as_sent = [(f.filename, f.content_type, f.data) for f in files]
    return len(message_bytes(build_message(claimed, files_as_sent)))


SHAPES: dict[str, tuple[dict[str, object], list[AttachmentInput]]] = {
    "short and ASCII": ({}, []),
    "non-ASCII headers at their longest": (
        {
            "subject": "[Flasky] " + CJK * 247,
            "recipients": [f"{CJK * 20} <to{n}@example.com>" for n in range(30)],
            "cc": [f"{CJK * 20} <cc{n}@example.com>" for n in range(30)],
            "reply_to": f"{CJK * 70} <help@example.com>",
            "sender": f"{CJK * 70} <flasky@example.com>",
        },
        [],
    ),
    "long ASCII headers": (
        {"subject": "[Flasky] " + "word " * 197, "cc": [f"u{n}@example.com" for n in range(200)]},
        [],
    ),
    "bodies of many short lines": (
        {"text_body": "line\n" * 50_000, "html_body": "<br>\r\n" * 50_000 + "\r" * 1000},
        [],
    ),
    "non-ASCII bodies": ({"text_body": CJK * 100_000, "html_body": f"<p>{CJK * 100_000}</p>"}, []),
    "a large attachment": (
        {},
        [AttachmentInput("data.bin", "application/octet-stream", os.urandom(3_000_001))],
    ),
    "many attachments with long non-ASCII names": (
        {},
        [
            AttachmentInput(f"{CJK * 63}{n:03}", "application/vnd.example+json", os.urandom(n))
            for n in range(100)
        ],
    ),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_estimate_is_never_below_the_bytes_sent_and_close_above(app: Flask, shape: str) -> None:
    changes, files = SHAPES[shape]
    row = {**ROW, **changes}
    with app.app_context():
        sent = _sent_size(row, files)
    estimate = encoded_size(row, files)
    assert sent <= estimate <= sent + max(sent // 50, 2048), (sent, estimate)


def test_base64_makes_a_file_a_third_larger_with_a_line_break_every_76_characters() -> None:
    empty = encoded_size(ROW, [AttachmentInput("a", "text/plain", b"")])
    one_line = encoded_size(ROW, [AttachmentInput("a", "text/plain", b"x" * 57)])
    two_lines = encoded_size(ROW, [AttachmentInput("a", "text/plain", b"x" * 58)])
    assert one_line - empty == 76 + 2
    assert two_lines - empty == 76 + 2 + 4 + 2


def test_over_the_limit_the_error_gives_the_file_size_the_encoded_size_and_the_limit() -> None:
    files = [
        AttachmentInput("a.pdf", "application/pdf", bytes(6_000_000)),
        AttachmentInput("b.pdf", "application/pdf", bytes(1_600_000)),
    ]
    size = encoded_size(ROW, files)
    assert 10_000_000 < size < 10_500_000  # 7.6 MB of files: under 10 MB, but not once encoded
    check_size(ROW, files, size, context_field="context")  # up to the limit: accepted
    with pytest.raises(InvalidEmail) as raised:
        check_size(ROW, files, 10_000_000, context_field="context")
    assert raised.value.field == "attachments"
    assert raised.value.reason == (
        f"7,600,000 bytes of files make a message of {size:,} bytes once encoded for sending "
        "(base64 adds a third), over the limit of 10,000,000 bytes (FLASKY_MAX_MESSAGE_BYTES)"
    )


def test_without_attachments_the_bodies_are_named() -> None:
    row = {**ROW, "text_body": "x" * 5000}
    with pytest.raises(InvalidEmail) as raised:
        check_size(row, [], 5000, context_field="recipients[3].context")
    assert raised.value.field == "recipients[3].context"
    assert raised.value.reason == (
        f"the rendered bodies make a message of {encoded_size(row, []):,} bytes once encoded "
        "for sending, over the limit of 5,000 bytes (FLASKY_MAX_MESSAGE_BYTES)"
    )
