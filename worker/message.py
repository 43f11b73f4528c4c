"""Build the Flask-Mail `Message` for an outbox row (inside the app context), and its bytes."""

from __future__ import annotations

import functools
import secrets
import socket
from calendar import timegm
from collections.abc import Iterable
from email import policy
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.utils import collapse_rfc2231_value, make_msgid

import flask_mail
from flask_mail import Message, sanitize_addresses

from worker.claims import ClaimedEmail

# Flask-Mail's Message() calls email.utils.make_msgid() for a Message-ID that flasky replaces
# at once with the row's; that call looks up this host's FQDN for every message (a DNS query
# on some hosts). Resolve it once per process instead.
flask_mail.make_msgid = functools.partial(make_msgid, domain=socket.getfqdn())


class _WirePolicy(policy.Compat32):
    """The fast pre-3.3 policy, with CRLF line ends, and the common header written directly.

    Headers are already encoded by Flask-Mail (RFC 2047), so this policy writes them as they
    are; `policy.SMTP`, which Flask-Mail uses, re-parses every header and costs about three
    times as much CPU for the same bytes (docs/benchmarks.md). Compat32 still passes every
    header through `email.header.Header` to fold it; one that is ASCII and fits on a line
    comes out unchanged, so it is written as it is (tests/unit/test_message.py compares
    both on many values).
    """

    def fold_binary(self, name: str, value: object) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and "\r" not in value
            and "\n" not in value
            and len(name) + 2 + len(value) <= self.max_line_length
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_WIRE_POLICY = _WirePolicy(linesep="\r\n")


def build_message(
    email: ClaimedEmail, attachments: Iterable[tuple[str, str, bytes]] = ()
) -> Message:
    """Both bodies, Cc and Reply-To, the attachments, the row's stable Message-ID, and as
    Date the time the email was scheduled for, or else queued. Bcc recipients are not given
    to the Message: they go in the SMTP envelope only (`ClaimedEmail.envelope_recipients`),
    never in a header.

    The same row always gives the same headers, so a duplicate after a crash carries the same
    Message-ID and receivers can drop it.
    """
    message = Message(
        subject=email.subject,
        recipients=list(email.recipients),
        cc=list(email.cc or ()),
        reply_to=email.reply_to,
        sender=email.sender,
        body=email.text_body,
        html=email.html_body,
        # A digest scheduled for 8 a.m. is dated 8 a.m., not when it was queued.
        date=timegm((email.send_at or email.created_at).timetuple()),
    )
    message.msgId = email.message_id
    for filename, content_type, data in attachments:
        message.attach(filename=filename, content_type=content_type, data=data)
    if message.has_bad_headers():
        raise ValueError("the subject, sender or a recipient contains a line break")
    return message


def message_bytes(message: Message) -> bytes:
    """The message as sent over SMTP (CRLF line ends)."""
    mime = message._message()  # Flask-Mail's MIME tree; its as_bytes() would use policy.SMTP
    # First: under policy.SMTP a header set below would be parsed, and written back decoded.
    mime.policy = _WIRE_POLICY
    _keep_address_order(mime, message)
    _label_filenames_utf8(mime)
    _set_boundaries(mime, message)
    return mime.as_bytes()


def _set_boundaries(mime: MIMEBase, message: Message) -> None:
    """A boundary for each multipart part, chosen here: the generator's own choice compiles a
    new regular expression for every boundary, to search the whole text for it (a fifth of
    the CPU of a message). A random token that is not in either body is as safe: the
    attachments are base64, whose alphabet has no "_"."""
    bodies = (message.body or "", message.html or "")
    for part in mime.walk():
        if part.is_multipart():
            boundary = "_" + secrets.token_hex(16)
            while any(boundary in body for body in bodies):  # practically never
                boundary = "_" + secrets.token_hex(16)
            part.set_boundary(boundary)


def _keep_address_order(mime: MIMEBase, message: Message) -> None:
    """To and Cc in the order the caller gave them: Flask-Mail joins them through a set, whose
    order changes from one process to the next, and the same row must give the same headers."""
    for header, addresses in (("To", message.recipients), ("Cc", message.cc)):
        if addresses:
            mime.replace_header(header, ", ".join(sanitize_addresses(addresses)))


def _label_filenames_utf8(mime: EmailMessage | MIMEBase) -> None:
    """Flask-Mail writes a non-ASCII filename as RFC 2231 `filename*=UTF8''...`; RFC 2231
    wants a registered charset name, "utf-8", which every mail reader knows."""
    for part in mime.walk():
        value = part.get_param("filename", header="Content-Disposition")
        if isinstance(value, tuple) and value[0].lower() == "utf8":
            filename = collapse_rfc2231_value(value)
            part.set_param("filename", ("utf-8", "", filename), header="Content-Disposition")
