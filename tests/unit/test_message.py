"""worker/message.py: the message the worker sends for an outbox row, and its bytes.

What a real SMTP server receives is proved in tests/test_mail_api.py and tests/test_pipeline.py;
here the message is built and parsed back, without sending it.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import random
import re
import secrets
import socket
from datetime import datetime
from email.message import EmailMessage
from typing import cast

import pytest
from flask import Flask

from tests.unit.conftest import ADMIN
from worker.claims import ClaimedEmail
from worker.message import _WIRE_POLICY, build_message, message_bytes


def _claimed(name: str = "张伟 <b>", **fields: object) -> ClaimedEmail:
    email = ClaimedEmail(
        id=1,
        attempts=1,
        recipients=[ADMIN],
        sender="Flasky Admin <flasky@example.com>",
        subject="[Flasky] 新用户 New User",
        text_body=f"A new user: {name}\n",
        html_body=f"<p>A new user: <b>{name}</b></p>",
        message_id="<abc@example.com>",
        created_at=datetime(2026, 11, 26, 12, 0, 0),
        cc=None,
        bcc=None,
        reply_to=None,
        send_at=None,
        attachment_count=0,
    )
    return dataclasses.replace(email, **fields)


def _parsed(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))


def test_message_bytes_carry_the_same_message_as_flask_mails_own(app: Flask) -> None:
    with app.app_context():
        message = build_message(_claimed())
        raw = message_bytes(message)
        ours = _parsed(raw)
        theirs = _parsed(message.as_bytes())
    for header in ("Subject", "From", "To", "Date", "Message-ID"):
        assert ours[header] == theirs[header]
    for kind in ("plain", "html"):
        assert ours.get_body((kind,)).get_content() == theirs.get_body((kind,)).get_content()
    assert ours["Message-ID"] == "<abc@example.com>"
    assert ours["Date"] == "Thu, 26 Nov 2026 12:00:00 +0000"
    assert b"\r\n" in raw and b"\n\n" not in raw


def test_building_messages_does_no_host_name_lookup(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    real_getfqdn = socket.getfqdn
    monkeypatch.setattr(socket, "getfqdn", lambda *a: lookups.append("x") or real_getfqdn(*a))
    with app.app_context():
        for _ in range(10):
            message_bytes(build_message(_claimed()))
    assert lookups == []


def test_the_headers_are_ascii_and_read_back_as_written(app: Flask) -> None:
    with app.app_context():
        raw = message_bytes(build_message(_claimed()))
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii(), "headers must be RFC 2047 encoded"
    parsed = _parsed(raw)
    assert parsed["Subject"] == "[Flasky] 新用户 New User"
    assert parsed["From"] == "Flasky Admin <flasky@example.com>"
    assert "A new user: 张伟 <b>" in parsed.get_body(("plain",)).get_content()
    assert "<b>张伟 <b></b>" in parsed.get_body(("html",)).get_content()


def test_cc_and_reply_to_are_headers_and_bcc_is_only_in_the_envelope(app: Flask) -> None:
    row = _claimed(
        recipients=["Zoë <zoe@example.com>", "amy@example.com", "bob@example.com"],
        cc=["carol@example.com", "Amy Again <AMY@example.com>"],
        bcc=["secret@example.com", "bob@example.com"],
        reply_to="Help Desk <help@example.com>",
    )
    with app.app_context():
        raw = message_bytes(build_message(row))
    parsed = _parsed(raw)
    assert parsed["To"] == "Zoë <zoe@example.com>, amy@example.com, bob@example.com"  # in order
    assert parsed["Cc"] == "carol@example.com, Amy Again <AMY@example.com>"
    assert parsed["Reply-To"] == "Help Desk <help@example.com>"
    assert "Bcc" not in parsed and b"secret@example.com" not in raw
    assert row.envelope_recipients == [
        "zoe@example.com",
        "amy@example.com",
        "bob@example.com",  # once, though in To and Bcc
        "carol@example.com",
        "AMY@example.com",
        "secret@example.com",
    ]


def test_the_same_row_always_gives_the_same_bytes(app: Flask) -> None:
    row = _claimed(cc=[f"cc{n}@example.com" for n in range(8)])
    with app.app_context():
        first, second = (message_bytes(build_message(row)) for _ in range(2))

    # New MIME boundaries are drawn for each message: compare everything else.
    def without_boundaries(raw: bytes) -> bytes:
        return re.sub(rb"_[0-9a-f]{32}", b"BOUNDARY", raw)

    assert without_boundaries(first) == without_boundaries(second)
    assert _parsed(first)["Cc"] == ", ".join(f"cc{n}@example.com" for n in range(8))


def test_a_scheduled_email_is_dated_when_it_was_scheduled_for(app: Flask) -> None:
    row = _claimed(send_at=datetime(2026, 12, 1, 8, 0, 0))
    with app.app_context():
        parsed = _parsed(message_bytes(build_message(row)))
    assert parsed["Date"] == "Tue, 01 Dec 2026 08:00:00 +0000"


def test_attachments_keep_their_bytes_order_and_names(app: Flask) -> None:
    pdf = bytes(range(256)) * 4
    files = [("report.pdf", "application/pdf", pdf), ("名单.csv", "text/csv", b"a,b\n")]
    with app.app_context():
        raw = message_bytes(build_message(_claimed(attachment_count=2), files))
    parsed = _parsed(raw)
    attached = list(parsed.iter_attachments())
    assert [(part.get_filename(), part.get_content_type()) for part in attached] == [
        ("report.pdf", "application/pdf"),
        ("名单.csv", "text/csv"),
    ]
    assert attached[0].get_payload(decode=True) == pdf
    assert attached[1].get_payload(decode=True) == b"a,b\n"
    assert b"filename*=utf-8''" in raw and b"UTF8''" not in raw  # RFC 2231's charset name


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"sender": "flasky@example.com\nBcc: victim@example.com"},
        {"recipients": ["admin@example.com\r\nBcc: victim@example.com"]},
    ],
)
def test_a_line_break_in_a_header_is_refused(app: Flask, fields: dict[str, object]) -> None:
    with app.app_context(), pytest.raises(ValueError, match="contains a line break"):
        build_message(_claimed(**fields))


def test_the_wire_policy_writes_headers_as_the_standard_one_does() -> None:
    """Short ASCII headers skip email.header's folding: the bytes must not change."""
    standard = email.policy.compat32.clone(linesep="\r\n")
    characters = ' \ta,;=?"<>()bc\u00e9'
    chooser = random.Random(11)
    values = ["[Flasky] New User", "", " ", "a  b ", "x" * 70, "x" * 90, "日本", "a\r\n b"]
    values += [
        "".join(chooser.choice(characters) for _ in range(chooser.randint(0, 30)))
        for _ in range(5000)
    ]
    for name in ("Subject", "Content-Type", "X-Long-Header-Name-For-Folding"):
        for value in values:
            assert _WIRE_POLICY.fold_binary(name, value) == standard.fold_binary(name, value)


def test_no_boundary_appears_in_a_body(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body that holds the first boundary drawn gets another one."""
    drawn = iter(["taken", "free"] * 4)
    monkeypatch.setattr(secrets, "token_hex", lambda size: next(drawn))
    with app.app_context():
        raw = message_bytes(build_message(_claimed(name="_taken")))
    parsed = _parsed(raw)
    assert parsed.get_boundary() == "_free"
    assert "_taken" in parsed.get_body(("plain",)).get_content()
