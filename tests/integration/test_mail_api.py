"""The mail API beyond the book: every keyword of `send_email`, end to end.

Each delivery test queues through `send_email`, lets the real worker deliver to the real SMTP
server, and checks the raw message and the SMTP envelope the server received. Scheduling and
priorities are in tests/integration/test_scheduled_and_priority.py.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from zoneinfo import ZoneInfo

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select

from devtools.smtp_server import SMTPServer
from tests.integration.conftest import ADMIN, app_settings, emails, wait_for_status
from web.extensions import db
from web.models import Attachment, Email, User
from web.outbox.api import InvalidEmail, send_email

PDF = os.urandom(64 * 1024)  # bytes no text encoding would survive unchanged
CSV = "name,city\n张伟,北京\n".encode()


def _queue(app: Flask, *args: object, **kwargs: object) -> int:
    with app.app_context():
        email_id = send_email(*args, **kwargs)
        db.session.commit()
        return email_id


def _headers(message: EmailMessage, name: str) -> list[tuple[str, str]]:
    """The (display name, address) pairs of an address header, as a mail reader shows them."""
    return [
        (address.display_name, address.addr_spec)
        for header in message.get_all(name, [])
        for address in header.addresses
    ]


def test_to_cc_bcc_and_reply_to_reach_the_headers_and_the_envelope(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    _queue(
        app,
        ["ann@example.com", "Bob Stone <bob@example.com>"],
        "Team news",
        "mail/test_email",
        cc=["张伟 <zhang@example.com>", "amy@example.com"],
        bcc=["hidden@example.com", "Secret Boss <boss@example.com>"],
        reply_to="Help Desk <help@example.com>",
    )
    (received,) = smtp_server.wait_for_messages(1)
    assert sorted(received.rcpt_tos) == sorted(
        [
            "ann@example.com",
            "bob@example.com",
            "zhang@example.com",
            "amy@example.com",
            "hidden@example.com",
            "boss@example.com",
        ]
    )
    message = received.parsed()
    # In the caller's order, every time (the same row must give the same headers).
    assert _headers(message, "To") == [("", "ann@example.com"), ("Bob Stone", "bob@example.com")]
    assert _headers(message, "Cc") == [("张伟", "zhang@example.com"), ("", "amy@example.com")]
    assert _headers(message, "Reply-To") == [("Help Desk", "help@example.com")]
    # Bcc is in the envelope only: no header names it, nothing in the message mentions them.
    assert message["Bcc"] is None
    assert b"hidden@example.com" not in received.raw and b"boss@" not in received.raw
    # The non-ASCII display name is an RFC 2047 encoded word in the raw header, not raw UTF-8.
    (raw_cc,) = [line for line in received.raw.split(b"\r\n") if line.startswith(b"Cc:")]
    assert raw_cc.isascii() and b"=?utf-8?" in raw_cc.lower()
    (row,) = wait_for_status(app, "sent")
    assert row.bcc == ["hidden@example.com", "Secret Boss <boss@example.com>"]


def test_the_same_address_in_to_and_cc_is_one_rcpt(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    _queue(app, ADMIN, "Twice?", "mail/test_email", cc=[f"Admin <{ADMIN}>"], bcc=ADMIN)
    (received,) = smtp_server.wait_for_messages(1)
    assert received.rcpt_tos == [ADMIN]


def test_attachments_arrive_byte_for_byte_with_their_names(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    _queue(
        app,
        ADMIN,
        "Your receipt",
        "mail/test_email",
        attachments=[
            ("报告 2026.pdf", "application/pdf", PDF),
            ("cities.csv", "text/csv", CSV),
        ],
    )
    (received,) = smtp_server.wait_for_messages(1)
    message = received.parsed()
    assert message.get_content_type() == "multipart/mixed"
    body, *files = message.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert [(f.get_filename(), f.get_content_type()) for f in files] == [
        ("报告 2026.pdf", "application/pdf"),
        ("cities.csv", "text/csv"),
    ]
    assert [f.get_payload(decode=True) for f in files] == [PDF, CSV]
    assert all(f.get_content_disposition() == "attachment" for f in files)
    # RFC 2231: the non-ASCII name as utf-8, percent-encoded, in an ASCII header.
    assert b"filename*=utf-8''%E6%8A%A5%E5%91%8A%202026.pdf" in received.raw
    (row,) = wait_for_status(app, "sent")
    assert row.attachment_count == 2


def test_a_time_in_the_past_sends_at_once(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    yesterday = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)
    email_id = _queue(app, ADMIN, "Late", "mail/test_email", send_at=yesterday)
    smtp_server.wait_for_messages(1)
    (row,) = wait_for_status(app, "sent")
    assert row.id == email_id and row.send_at is None


def test_a_second_call_with_the_same_key_returns_the_first_email(
    app: Flask, redis_url: str
) -> None:
    """No worker runs: what was published stays on the queue to be counted."""
    first = _queue(app, ADMIN, "Welcome", "mail/test_email", idempotency_key="welcome:7")
    again = _queue(app, ADMIN, "Welcome (again)", "mail/test_email", idempotency_key="welcome:7")
    other = _queue(app, ADMIN, "Welcome", "mail/test_email", idempotency_key="welcome:8")
    assert again == first and other != first
    assert [(e.id, e.subject) for e in emails(app)] == [
        (first, "[Flasky] Welcome"),
        (other, "[Flasky] Welcome"),
    ]
    assert redis.Redis.from_url(redis_url).llen("flasky.normal") == 2


def test_twenty_threads_with_one_key_make_one_row_and_one_email(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    barrier = threading.Barrier(20)
    ids: list[int] = []
    errors: list[BaseException] = []

    def call(n: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                ids.append(
                    send_email(
                        ADMIN, "Welcome", "mail/test_email", idempotency_key="welcome:42", n=n
                    )
                )
                db.session.commit()
                db.session.remove()
        except BaseException as exc:  # reported below, with the thread's own traceback
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(ids) == 20 and len(set(ids)) == 1
    (row,) = wait_for_status(app, "sent")
    assert row.id == ids[0] and row.idempotency_key == "welcome:42"
    smtp_server.wait_for_messages(1)
    with app.app_context():
        # Any second email would have been published by now: the first one was delivered.
        assert db.session.scalar(select(func.count()).select_from(Email)) == 1
    assert len(smtp_server.messages) == 1


def _queue_in_a_process(settings: dict[str, object], barrier: Barrier, results: Queue) -> None:
    """In a process of its own (spawned): wait for the others, then queue with one key."""
    from web import create_app

    app = create_app("testing", **settings)
    with app.app_context():
        barrier.wait(timeout=30)
        email_id = send_email(ADMIN, "Welcome", "mail/test_email", idempotency_key="welcome:p")
        db.session.commit()
        results.put(email_id)


def test_four_processes_with_one_key_make_one_row_and_one_email(
    app: Flask, database_url: str, redis_url: str, smtp_server: SMTPServer
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    settings = app_settings(database_url, redis_url, smtp_server.port)
    processes = [
        context.Process(target=_queue_in_a_process, args=(settings, barrier, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    try:
        ids = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    assert len(set(ids)) == 1
    assert [e.id for e in emails(app)] == ids[:1]
    assert redis.Redis.from_url(redis_url).llen("flasky.normal") == 1


def test_the_admin_email_about_a_new_user_is_keyed_by_the_user(app: Flask, redis_url: str) -> None:
    """A retried request that queues the notice again gets the same email back."""
    from web.views import _store_if_new

    with app.test_request_context():
        assert _store_if_new("Ulla")
        user_id = db.session.scalar(select(User.id).where(User.username == "Ulla"))
        (row,) = emails(app)
        assert row.idempotency_key == f"new-user:{user_id}"
        retried = send_email(
            ADMIN, "New User", "mail/new_user", name="Ulla", idempotency_key=f"new-user:{user_id}"
        )
        db.session.commit()
        assert retried == row.id
    assert len(emails(app)) == 1
    assert redis.Redis.from_url(redis_url).llen("flasky.normal") == 1


INVALID_CALLS = {
    "to": dict(to="not an address"),
    "to (empty list)": dict(to=[]),
    "to (dotless domain)": dict(to="root@localhost"),
    "cc": dict(cc=["ok@example.com", "bad@@example.com"]),
    "bcc": dict(bcc="two@example.com, addresses@example.com"),
    "bcc (header injection)": dict(bcc="x@example.com\r\nSubject: hi"),
    "reply_to": dict(reply_to="nobody"),
    "send_at": dict(send_at=datetime(2030, 1, 1, 8, 0)),  # naive: which 8 a.m.?
    "send_at (not a datetime)": dict(send_at="2030-01-01T08:00:00Z"),
    "priority": dict(priority="urgent"),
    "idempotency_key": dict(idempotency_key=""),
    "attachments (not a triple)": dict(attachments=[("a.pdf", PDF)]),
    "attachments (bad content type)": dict(attachments=[("a.pdf", "pdf", PDF)]),
    "attachments (text, not bytes)": dict(attachments=[("a.txt", "text/plain", "hello")]),
    "attachments (path in the name)": dict(attachments=[("../etc/passwd", "text/plain", b"x")]),
    "attachments (over 10 MB)": dict(
        attachments=[
            ("a.bin", "application/octet-stream", bytes(6 * 1024 * 1024)),
            ("b.bin", "application/octet-stream", bytes(4 * 1024 * 1024 + 1)),
        ]
    ),
    "subject": dict(subject="Hi\nBcc: victim@example.com"),
    # Issue 14, point 7: what the name form refuses, and what the columns cannot hold.
    "subject (over the column with the prefix)": dict(subject="s" * 990),
    "subject (bidi control)": dict(subject="Your invoice \u202efdp.exe"),
    "cc (bidi control in a name)": dict(cc="Admin \u202etroppuS <support@example.com>"),
    "reply_to (over the column)": dict(reply_to=f"{'h' * 310} <help@example.com>"),
    "idempotency_key (bidi control)": dict(idempotency_key="user:\u202e24"),
    "attachments (bidi control in a filename)": dict(
        attachments=[("invoice\u202egpj.exe", "image/jpeg", b"MZ")]
    ),
    "attachments (dot-dot)": dict(attachments=[("..", "text/plain", b"x")]),
    "attachments (drive letter)": dict(attachments=[("C:evil.exe", "text/plain", b"x")]),
    "context (lone surrogate)": dict(template="mail/new_user", name="\ud800"),
    # Issue 14, point 13: 7.6 MB of file, over 10,000,000 bytes once base64-encoded.
    "attachments (over 10 MB once encoded)": dict(
        attachments=[("a.bin", "application/octet-stream", bytes(7_600_000))]
    ),
}


@pytest.mark.parametrize("case", INVALID_CALLS)
def test_invalid_input_raises_the_apis_error_naming_the_field_and_writes_nothing(
    app: Flask, redis_url: str, case: str
) -> None:
    arguments = {"to": ADMIN, "subject": "Hello", "template": "mail/test_email"}
    arguments.update(INVALID_CALLS[case])
    field = case.split(" ")[0]
    with app.app_context():
        with pytest.raises(InvalidEmail) as raised:
            send_email(**arguments)
        db.session.commit()
        assert raised.value.field == field
        assert str(raised.value).startswith(f"{field}: ")
        assert db.session.scalar(select(func.count()).select_from(Email)) == 0
        assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert redis.Redis.from_url(redis_url).dbsize() == 0


@pytest.mark.parametrize(
    "case",
    [
        "subject (over the column with the prefix)",
        "reply_to (over the column)",
        "context (lone surrogate)",
        "attachments (bidi control in a filename)",
    ],
)
def test_after_invalid_email_the_callers_transaction_is_still_usable(
    app: Flask, redis_url: str, case: str
) -> None:
    """Before, a subject over the column was a DataError on PostgreSQL, and a lone surrogate a
    UnicodeEncodeError: either left the caller's transaction aborted, its user lost."""
    arguments = {"to": ADMIN, "subject": "Hello", "template": "mail/test_email"}
    arguments.update(INVALID_CALLS[case])
    with app.app_context():
        db.session.add(User(username="Ulla"))
        db.session.flush()
        with pytest.raises(InvalidEmail):
            send_email(**arguments)
        db.session.commit()
        assert db.session.scalars(select(User.username)).all() == ["Ulla"]
        assert db.session.scalar(select(func.count()).select_from(Email)) == 0


def test_the_books_call_still_works(
    app: Flask, celery_worker: object, smtp_server: SMTPServer
) -> None:
    email_id = _queue(app, ADMIN, "New User", "mail/new_user", name="Book")
    (received,) = smtp_server.wait_for_messages(1)
    assert received.rcpt_tos == [ADMIN]
    (row,) = wait_for_status(app, "sent")
    assert row.id == email_id and row.priority == "normal" and row.cc is None


def test_deleting_an_email_deletes_its_attachments(app: Flask) -> None:
    with app.app_context():
        email_id = send_email(
            ADMIN, "Bye", "mail/test_email", attachments=[("a.txt", "text/plain", b"a")]
        )
        db.session.commit()
        db.session.execute(db.delete(Email).where(Email.id == email_id))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_an_aware_time_in_any_zone_is_stored_in_utc(app: Flask) -> None:
    at = datetime(2031, 6, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))  # 06:00 UTC (summer)
    with app.app_context():
        row = db.session.get(Email, send_email(ADMIN, "Later", "mail/test_email", send_at=at))
        assert row.send_at == datetime(2031, 6, 1, 6, 0) == row.next_attempt_at
        assert at.astimezone(UTC).replace(tzinfo=None) == row.send_at
        db.session.rollback()
