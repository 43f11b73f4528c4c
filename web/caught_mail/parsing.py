"""Reading a caught .eml: the few headers a list needs, or the whole message for its page.

Anything may land in the catcher's folder, so nothing here raises on a malformed message:
an undecodable header is shown as it was written, a body in an unknown charset is decoded as
UTF-8 with replacement characters, a message the parser gives up on is shown as its raw text
with a note. Every string returned is safe to put in a page (valid Unicode, no lone
surrogates: the parser keeps undecodable bytes as surrogates, which UTF-8 cannot encode).
"""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

log = logging.getLogger(__name__)

# A list reads this much of each file: the header section of any message the app sends, and of
# almost any other, without reading a large attachment for one line of a list.
HEAD_BYTES = 64 * 1024

_POLICY = policy.default
_UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f"*/:;<>?\\|]')


@dataclass(frozen=True)
class Summary:
    """One line of the list."""

    subject: str
    to: str
    sender: str


@dataclass(frozen=True)
class Attachment:
    index: int  # its place among the message's attachments: its download URL
    filename: str  # safe to offer for download (see safe_filename)
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class CaughtMessage:
    """A message as its page shows it."""

    summary: Summary
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    attachments: list[Attachment] = field(default_factory=list)
    problem: str | None = None  # why the message could not be read in full


def read_summary(head: bytes) -> Summary:
    """The list's fields from the start of a message (its header section, see HEAD_BYTES)."""
    try:
        message = BytesParser(policy=_POLICY).parsebytes(head, headersonly=True)
    except Exception:  # never expected; the file still belongs in the list
        log.exception("could not parse the headers of a caught message")
        return Summary(subject="", to="", sender="")
    return _summary(message)


def read_message(raw: bytes) -> CaughtMessage:
    """The whole message: headers, bodies and attachments."""
    try:
        message = BytesParser(policy=_POLICY).parsebytes(raw)
    except Exception as exc:  # the email package gives up on very few inputs
        log.warning("could not parse a caught message: %s", exc)
        return CaughtMessage(
            summary=Summary(subject="", to="", sender=""),
            headers=[],
            text=raw.decode("utf-8", "replace"),
            html=None,
            problem=f"The message could not be parsed ({type(exc).__name__}): shown as raw text.",
        )
    text_part = _body(message, "plain")
    html_part = _body(message, "html")
    # Every other part is listed, inline images and calendar invitations too: nothing hides.
    others = [part for part in _leaves(message) if part is not text_part and part is not html_part]
    attachments = [_attachment(index, part) for index, part in enumerate(others)]
    return CaughtMessage(
        summary=_summary(message),
        headers=[(clean(name), _header_text(name, value)) for name, value in message.raw_items()],
        text=_text(text_part) if text_part is not None else None,
        html=_text(html_part) if html_part is not None else None,
        attachments=attachments,
        problem=_problem(message),
    )


def _attachment(index: int, part: Message) -> Attachment:
    content_type = part.get_content_type()
    return Attachment(
        index=index,
        filename=safe_filename(_filename(part), index, content_type),
        content_type=clean(content_type),
        data=_payload(part),
    )


def safe_filename(name: str | None, index: int, content_type: str) -> str:
    """A download name: the sender's file name without any folder, control character or
    character that a file system or a Content-Disposition header would take specially; or
    `part-<index>` with an extension for the content type when nothing is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_IN_FILENAME.sub("_", clean(base)).strip(" ._")
    if base:
        return base[:150]
    extension = mimetypes.guess_extension(content_type) or ".bin"
    return f"part-{index}{extension}"


def clean(text: str) -> str:
    """`text` as valid Unicode: undecodable bytes (kept by the parser as surrogates) become
    what UTF-8 makes of them, or U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "replace").decode("utf-8")


def _summary(message: Message) -> Summary:
    return Summary(
        subject=_header(message, "Subject"),
        to=_header(message, "To"),
        sender=_header(message, "From"),
    )


def _header(message: Message, name: str) -> str:
    """Every `name` header of `message`, decoded, joined by ", "; '' when there is none."""
    return ", ".join(
        _header_text(key, value)
        for key, value in message.raw_items()
        if key.lower() == name.lower()
    )


def _header_text(name: str, raw: str) -> str:
    """The decoded header (RFC 2047 words, folding), or its raw text if it will not decode."""
    try:
        value = str(_POLICY.header_fetch_parse(name, raw))
    except Exception:  # the header parser raises on some malformed values
        value = " ".join(raw.split())
    return clean(value)


def _body(message: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        return message.get_body(preferencelist=(subtype,))
    except Exception:  # a malformed MIME structure
        return None


def _leaves(message: Message) -> list[Message]:
    try:
        return [part for part in message.walk() if not part.is_multipart()]
    except Exception:
        return []


def _text(part: Message) -> str:
    """A text part's content; decoded as UTF-8 when its own charset will not do."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except Exception:  # unknown charset, broken transfer encoding
        content = None
    if isinstance(content, str):
        return clean(content)
    return _payload(part).decode("utf-8", "replace")


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return clean(raw).encode() if isinstance(raw, str) else b""


def _filename(part: Message) -> str | None:
    try:
        return part.get_filename()
    except Exception:
        return None


def _problem(message: Message) -> str | None:
    """A note for a message the parser had to repair: its defects, named."""
    defects = {type(defect).__name__ for part in _leaves(message) for defect in part.defects}
    defects.update(type(defect).__name__ for defect in message.defects)
    if not defects:
        return None
    return "The message is malformed; shown as far as it could be read: " + ", ".join(
        sorted(defects)
    )
