#!/usr/bin/env python3
"""Stand-in for Mailpit (axllent/mailpit), for the compose check where Docker Hub is unreachable.

    mailpit [--smtp HOST:PORT] [--listen HOST:PORT]   SMTP on :1025, HTTP on :8025
    mailpit readyz                                      exit 0 when the HTTP side is ready

It keeps every message in memory and serves the part of Mailpit's HTTP API that the check
reads, with Mailpit's JSON field names, so that what reads this reads the real Mailpit too:
GET /api/v1/messages (newest first; ?start= and ?limit=), GET /api/v1/message/<ID> (or
`latest`), GET /api/v1/message/<ID>/raw, the probes /livez and /readyz, and a plain list at /.
Standard library and aiosmtpd (Debian's python3-aiosmtpd) only.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import json
import re
import secrets
import signal
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

SNIPPET_LENGTH = 250  # Mailpit's
SUMMARY_FIELDS = ("ID", "MessageID", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Created")
Address = dict[str, str]


def _addresses(message: EmailMessage, header: str) -> list[Address]:
    value = message.get(header)
    addresses = getattr(value, "addresses", ())
    return [{"Name": item.display_name, "Address": item.addr_spec} for item in addresses]


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    if not isinstance(part, EmailMessage):
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # an unknown charset or a broken encoding
        return ""


def parse_message(raw: bytes, recipients: list[str], received: datetime) -> dict[str, Any]:
    """One received message as Mailpit's API shows it (its `Message`), plus `Created`.

    `recipients` is the SMTP envelope's: those not in To or Cc are the Bcc, as Mailpit shows.
    """
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    to, cc = _addresses(message, "To"), _addresses(message, "Cc")
    shown = {address["Address"].lower() for address in to + cc}
    senders = _addresses(message, "From")
    date = message.get("Date")
    sent = getattr(date, "datetime", None) or received
    attachments = [
        {
            "PartID": str(number),
            "FileName": part.get_filename() or "",
            "ContentType": part.get_content_type(),
            "ContentID": "",
            "Size": len(part.get_payload(decode=True) or b""),
        }
        for number, part in enumerate(message.iter_attachments(), start=1)
    ]
    return {
        "ID": secrets.token_urlsafe(16),
        "MessageID": str(message.get("Message-ID", "")).strip().strip("<>"),
        "From": senders[0] if senders else None,
        "To": to,
        "Cc": cc,
        "Bcc": [
            {"Name": "", "Address": address}
            for address in recipients
            if address.lower() not in shown
        ],
        "ReplyTo": _addresses(message, "Reply-To"),
        "ReturnPath": str(message.get("Return-Path", "")).strip().strip("<>"),
        "Subject": str(message.get("Subject", "")),
        "Date": sent.isoformat(),
        "Created": received.isoformat(),
        "Tags": [],
        "Text": _body(message, "plain"),
        "HTML": _body(message, "html"),
        "Size": len(raw),
        "Inline": [],
        "Attachments": attachments,
    }


def summary(stored: dict[str, Any]) -> dict[str, Any]:
    """A message as the list shows it (Mailpit's `MessageSummary`)."""
    return {
        **{field: stored[field] for field in SUMMARY_FIELDS},
        "Read": False,
        "Tags": [],
        "Size": stored["Size"],
        "Attachments": len(stored["Attachments"]),
        "Snippet": " ".join(stored["Text"].split())[:SNIPPET_LENGTH],
    }


class Mailbox:
    """The messages received, oldest first, with their raw bytes; shared by SMTP and HTTP."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[dict[str, Any], bytes]] = []

    def add(self, raw: bytes, recipients: list[str]) -> dict[str, Any]:
        stored = parse_message(raw, recipients, datetime.now(UTC))
        with self._lock:
            self._messages.append((stored, raw))
        return stored

    def newest_first(self) -> list[dict[str, Any]]:
        with self._lock:
            return [stored for stored, _ in reversed(self._messages)]

    def find(self, message_id: str) -> tuple[dict[str, Any], bytes] | None:
        with self._lock:
            if message_id == "latest":
                return self._messages[-1] if self._messages else None
            return next((item for item in self._messages if item[0]["ID"] == message_id), None)


def messages_page(mailbox: Mailbox, query: dict[str, list[str]]) -> dict[str, Any]:
    """GET /api/v1/messages: Mailpit's `MessagesSummary`."""
    everything = mailbox.newest_first()
    start = max(0, int(query.get("start", ["0"])[0]))
    limit = max(0, int(query.get("limit", ["50"])[0]))
    page = everything[start : start + limit]
    return {
        "total": len(everything),
        "unread": len(everything),
        "count": len(page),
        "messages_count": len(everything),
        "start": start,
        "tags": [],
        "messages": [summary(stored) for stored in page],
    }


class ApiHandler(BaseHTTPRequestHandler):
    """The HTTP side; `server.mailbox` holds the messages."""

    server: MailpitHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        url = urlsplit(self.path)
        if url.path in ("/livez", "/readyz"):
            self._send(200, b"ok", "text/plain")
            return
        if url.path == "/api/v1/messages":
            try:
                page = messages_page(self.server.mailbox, parse_qs(url.query))
            except ValueError:
                self._send(400, b"start and limit must be whole numbers", "text/plain")
                return
            self._send_json(page)
            return
        match = re.fullmatch(r"/api/v1/message/([^/]+)(/raw)?", url.path)
        if match:
            found = self.server.mailbox.find(match[1])
            if found is None:
                self._send(404, b"message not found", "text/plain")
            elif match[2]:
                self._send(200, found[1], "text/plain; charset=utf-8")
            else:
                self._send_json(found[0])
            return
        if url.path == "/":
            self._send(200, self._index().encode(), "text/html; charset=utf-8")
            return
        self._send(404, b"not found", "text/plain")

    def _index(self) -> str:
        rows = "".join(
            f"<li>{html.escape(stored['Created'])}: "
            f"{html.escape(', '.join(to['Address'] for to in stored['To']))}: "
            f"{html.escape(stored['Subject'])}</li>"
            for stored in self.server.mailbox.newest_first()
        )
        return (
            "<!doctype html><title>Mailpit stand-in</title>"
            "<h1>Messages (Mailpit stand-in of the compose check)</h1>"
            f"<ul>{rows}</ul><p>JSON: <a href='/api/v1/messages'>/api/v1/messages</a></p>"
        )

    def _send_json(self, payload: object) -> None:
        self._send(200, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """Quiet: the healthcheck asks every few seconds."""


class MailpitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], mailbox: Mailbox) -> None:
        super().__init__(address, ApiHandler)
        self.mailbox = mailbox


class SMTPHandler:
    """aiosmtpd's handler: every message accepted is kept."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        stored = self.mailbox.add(raw, list(envelope.rcpt_tos))
        print(f"received {stored['ID']}: {stored['Subject']!r} for {envelope.rcpt_tos}", flush=True)
        return "250 2.0.0 Ok: queued as " + stored["ID"]


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - a server in a container


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(smtp: tuple[str, int], listen: tuple[str, int]) -> None:
    from aiosmtpd.controller import Controller  # Debian's python3-aiosmtpd, in the image

    mailbox = Mailbox()
    controller = Controller(
        SMTPHandler(mailbox), hostname=smtp[0], port=smtp[1], enable_SMTPUTF8=True
    )
    http_server = MailpitHTTPServer(listen, mailbox)
    # PID 1 of a container: without a handler SIGTERM is ignored, and `docker stop` waits.
    signal.signal(signal.SIGTERM, _stop)
    controller.start()
    print(f"Mailpit stand-in: SMTP on {smtp[0]}:{smtp[1]}, HTTP on {listen[0]}:{listen[1]}")
    sys.stdout.flush()
    try:
        http_server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        http_server.server_close()
        controller.stop()


def readyz(listen: tuple[str, int]) -> int:
    url = f"http://127.0.0.1:{listen[1]}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http, fixed
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailpit", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["readyz"], help="check readiness")
    parser.add_argument("--smtp", default="0.0.0.0:1025", help="SMTP address (host:port)")  # noqa: S104
    parser.add_argument("--listen", default="0.0.0.0:8025", help="HTTP address (host:port)")  # noqa: S104
    args = parser.parse_args(argv)
    if args.command == "readyz":
        return readyz(_host_port(args.listen))
    serve(_host_port(args.smtp), _host_port(args.listen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
