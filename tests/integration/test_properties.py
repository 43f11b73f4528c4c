"""Property-based tests (Hypothesis): arbitrary input to the name form and to `send_email`.

The form must never answer 500: a form error (200) or a redirect (302) that stored exactly the
trimmed, NFC-normalised name. Whatever a name holds, the email built from it has the same
headers, its HTML has the template's markup and nothing more, and no template evaluates it.
Subjects and recipients are refused with ValueError or read back unchanged from the message.
Every test here runs on SQLite and on PostgreSQL (the `app` fixture).
"""

from __future__ import annotations

import dataclasses
import email.policy
import re
import unicodedata
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from html.parser import HTMLParser
from typing import cast
from urllib.parse import quote_from_bytes

from email_validator import validate_email
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import delete, select

from tests.forms import csrf_token
from tests.integration.conftest import ADMIN
from web.extensions import db
from web.models import Email, User
from web.outbox.addresses import has_control_characters
from web.outbox.api import send_email
from worker.claims import ClaimedEmail
from worker.message import build_message, message_bytes

EXPECTED_HEADERS = {"content-type", "mime-version", "subject", "from", "to", "date", "message-id"}

# Function-scoped fixtures (the app, its database) are shared by a test's examples on
# purpose: each example cleans up what it wrote.
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every code point, lone surrogates and controls included.
ANY_CHARACTER = st.characters(exclude_categories=())
TRICKY = [
    "{{ 7*7 }}",
    "{% for x in range(3) %}loop{% endfor %}",
    "{{ config }}",
    "<script>alert('x')</script>",
    "<b>bold</b> &amp; <!-- c -->",
    "Eve\r\nBcc: victim@example.com",
    "nul\x00byte",
    "\u200f\u05e9\u05dc\u05d5\u05dd",  # right-to-left mark, Hebrew
    "evil\u202egnp.exe",  # right-to-left override
    "e\u0301",  # decomposed é: NFC makes it one code point
    "\ud800",
    "  padded  ",
    "line\u2028separator",
    "\ufeffbom",
    "=?utf-8?q?encoded?=",
]
NAMES = st.one_of(
    st.text(ANY_CHARACTER, max_size=80),
    st.sampled_from(TRICKY),
    st.lists(st.sampled_from(TRICKY) | st.text(ANY_CHARACTER, max_size=5), max_size=4).map("".join),
    st.builds(lambda ch, n: ch * n, ANY_CHARACTER, st.integers(9_990, 10_010)),
)


def _clean(app: Flask) -> None:
    with app.app_context():
        db.session.execute(delete(Email))
        db.session.execute(delete(User))
        db.session.commit()


def _as_received(name: str) -> str:
    """The name as the view sees it when a browser sends its UTF-8 bytes (see `_post_raw`).

    A lone surrogate has no valid UTF-8 form; its bytes are not valid UTF-8, and Werkzeug
    decodes form data with its "werkzeug.url_quote" error handler, which gives them back
    percent-encoded: "\ud800" arrives as the text "%ED%A0%80".
    """
    return name.encode("utf-8", "surrogatepass").decode("utf-8", "werkzeug.url_quote")


def _post_raw(client: FlaskClient, token: str, name: str):
    """POST the form percent-encoded by hand: a lone surrogate goes as its (invalid) bytes."""
    encoded = quote_from_bytes(name.encode("utf-8", "surrogatepass"))
    body = f"name={encoded}&csrf_token={token}"
    return client.post("/", data=body, content_type="application/x-www-form-urlencoded")


@PROPERTY_SETTINGS
@given(name=NAMES)
def test_the_form_never_fails_and_stores_the_trimmed_nfc_name(
    app: Flask, client: FlaskClient, name: str
) -> None:
    _clean(app)
    response = _post_raw(client, csrf_token(client), name)
    # 413: a body over FLASKY_MAX_REQUEST_BYTES, refused with its page before the form is read.
    assert response.status_code in (200, 302, 413), response.status_code
    expected = unicodedata.normalize("NFC", _as_received(name).strip())
    with app.app_context():
        users = list(db.session.scalars(select(User.username)))
        emails = list(db.session.scalars(select(Email)))
    if response.status_code == 413:
        assert response.request.content_length > app.config["MAX_CONTENT_LENGTH"]
        assert "too large" in response.get_data(as_text=True).lower()
        assert users == [] and emails == []
        return
    if response.status_code == 200:
        assert 'role="alert"' in response.get_data(as_text=True)
        assert users == [] and emails == []
        return
    assert users == [expected]
    assert 1 <= len(expected) <= 64 and not has_control_characters(expected)
    (row,) = emails
    assert expected in row.text_body
    assert str(escape(expected)) in client.get("/").get_data(as_text=True)


@PROPERTY_SETTINGS
@given(name=st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), max_size=64))
def test_a_printable_name_is_accepted(app: Flask, client: FlaskClient, name: str) -> None:
    expected = unicodedata.normalize("NFC", name.strip())
    if not expected or len(expected) > 64:
        return
    _clean(app)
    assert _post_raw(client, csrf_token(client), name).status_code == 302


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _claimed(row: Email) -> ClaimedEmail:
    return ClaimedEmail(**{f.name: getattr(row, f.name) for f in dataclasses.fields(ClaimedEmail)})


def _wire(row: Email) -> EmailMessage:
    """The message exactly as the worker would send this row, parsed back."""
    raw = message_bytes(build_message(_claimed(row)))
    return cast(EmailMessage, message_from_bytes(raw, policy=email.policy.default))


def _mailbox(message: EmailMessage) -> tuple[str, str]:
    """The To header's (display name, address) as RFC 2047 says a reader decodes them.

    Not `message["To"].addresses`: Python's address parser keeps the white space between
    two adjacent encoded words of a display name, which RFC 2047 (6.2) says to drop, so a long
    name that was folded correctly would read back with an extra space.
    """
    (raw,) = (value for name, value in message.raw_items() if name.lower() == "to")
    name, address = parseaddr(re.sub(r"\r?\n[ \t]", " ", raw))
    return str(make_header(decode_header(name))), address


class _Markup(HTMLParser):
    """The structure of an HTML document: its tags, attributes, comments, declarations."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[object, ...]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, tuple(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_comment(self, data: str) -> None:
        self.events.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.events.append(("decl", decl))


def _new_user_email(app: Flask, name: str) -> tuple[str, EmailMessage] | None:
    """Queue the new-user email for `name` (rolled back after); its Message-ID and the message
    as sent, or None if refused (ValueError)."""
    with app.app_context():
        try:
            row = db.session.get(Email, send_email(ADMIN, "New User", "mail/new_user", name=name))
            return row.message_id, _wire(row)
        except ValueError:
            return None
        finally:
            db.session.rollback()


@PROPERTY_SETTINGS
@given(name=NAMES)
@example(name="nul\x00byte")  # was a database error on PostgreSQL, now a ValueError
@example(name="{{ 7*7 }} <b>bold</b>")
def test_a_name_in_the_email_is_text_never_headers_markup_or_template(
    app: Flask, name: str
) -> None:
    built = _new_user_email(app, name)
    if built is None:
        assert "\x00" in name or _as_received(name) != name, "refused a storable name"
        return
    message_id, message = built
    assert {header.lower() for header in message} == EXPECTED_HEADERS
    assert (message["Subject"], message["To"]) == ("[Flasky] New User", ADMIN)
    assert message["Message-ID"] == message_id
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    # Text travels with CRLF line ends (RFC 5322): compare lines, not line-end bytes.
    assert _lines(name) in _lines(text), "the text body shows the name as typed"
    reference = _new_user_email(app, "Placeholder")
    assert reference is not None
    reference_html = reference[1].get_body(("html",)).get_content()
    assert _Markup(html).events == _Markup(reference_html).events, "the name became markup"
    if "{{ 7*7 }}" in name:
        assert "49" not in text.replace(name, "")


DOMAINS = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z]{2,6}){1,2}", fullmatch=True)
LOCAL_PARTS = st.from_regex(r"[A-Za-z0-9._%+-]{1,20}", fullmatch=True)
ADDR_SPECS = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL_PARTS, DOMAINS)
DISPLAY_NAMES = st.text(ANY_CHARACTER, max_size=30)
RECIPIENTS = st.one_of(
    ADDR_SPECS,
    st.builds(lambda name, addr: f"{name} <{addr}>", DISPLAY_NAMES, ADDR_SPECS),
    st.builds(lambda name, addr: formataddr((name, addr)), DISPLAY_NAMES, ADDR_SPECS),
    st.text(ANY_CHARACTER, max_size=40),
)
SUBJECTS = st.one_of(
    st.text(ANY_CHARACTER, max_size=120),
    st.sampled_from(TRICKY),
    st.text(st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]), max_size=300),
)


@PROPERTY_SETTINGS
@given(subject=SUBJECTS, to=RECIPIENTS)
@example(subject="=??Q??=", to=ADMIN)  # readers decoded it to an empty subject; now refused
@example(subject="x", to=formataddr(("Jo " * 30, "jo@example.com")))  # folded display name
@example(subject="x", to="0@0.A")  # the domain arrives in lower case
def test_a_subject_and_a_recipient_are_refused_or_read_back_unchanged(
    app: Flask, subject: str, to: str
) -> None:
    with app.app_context():
        try:
            row = db.session.get(Email, send_email(to, subject, "mail/test_email"))
            message = _wire(row)
        except ValueError:
            return
        finally:
            db.session.rollback()
    assert {header.lower() for header in message} == EXPECTED_HEADERS
    # Leading and trailing white space of a header value is not part of it (RFC 5322 folding).
    assert str(message["Subject"]).strip() == f"[Flasky] {subject}".strip()
    name, address = parseaddr(to)
    local = address.rpartition("@")[0]
    # The domain is stored as email-validator normalises it: lower case, IDNA (ASCII).
    ascii_domain = validate_email(address, check_deliverability=False).ascii_domain
    assert _mailbox(message) == (name, f"{local}@{ascii_domain}")
    assert ascii_domain.lower() == ascii_domain and ascii_domain.isascii()
