"""web/caught_mail, /dev/inbox: the catcher's .eml files listed, read and shown, in development
and nowhere else; safe against names from outside the folder and against malformed mail."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.smtp_catcher import SmtpCatcher
from tests.unit.conftest import make_app
from web.caught_mail import folder, parsing
from web.caught_mail.views import BODY_POLICY, PER_PAGE

HTML = '<div class="header" style="color: #ffffff">Flasky</div><p>Hello <b>Ada</b></p>'

MALFORMED = [
    b"",
    b"\xff\xfe\x00 not an email at all \x80\x81",
    b'Subject: =?utf-8?q?=FF=FE?=\r\nTo: <<<@>>>, "\r\n\r\nbody',
    b"Subject: \xe2\x82\xac raw UTF-8 and a stray \xff\r\n\r\nbody \xff",
    b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\n'
    b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xff\xfe body\r\n",
    b"Content-Type: multipart/alternative\r\n\r\nno boundary at all",
    b"Content-Transfer-Encoding: base64\r\n\r\n!!! not base64 !!!",
    b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
    b"\r\n\r\n<b>=ZZ=\r\n</b>",
    b"To: =?x-bad?b?!!!?=\r\nDate: not a date\r\nMessage-ID: <<>\r\n"
    b'Content-Type: application/pdf; name="=?utf-8?b?!!?="\r\n'
    b"Content-Disposition: attachment; filename*=x-bad''%FF%2F..%2Fetc\r\n\r\n%PDF",
    b"Subject: no separator line\r\nthis line is not a header",
    b"From: " + b"a" * 100_000 + b"\r\n\r\nlong header",
]


def email(subject: str = "Hello", **parts: object) -> bytes:
    """An email as the worker sends one: text and HTML, and `attachments` (name, type, data)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Flasky Admin <flasky@example.com>"
    message["To"] = "张伟 <zhang@example.com>, ada@example.com"
    message["Date"] = "Sun, 29 Nov 2026 10:00:00 +0000"
    message.set_content(str(parts.get("text", "Hello, Ada.\n")))
    message.add_alternative(str(parts.get("html", HTML)), subtype="html")
    for name, content_type, data in parts.get("attachments", ()):  # type: ignore[attr-defined]
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def catcher(maildir: Path) -> SmtpCatcher:
    """The real catcher, not started: its save() writes files exactly as it does for mail."""
    return SmtpCatcher(maildir)


@pytest.fixture
def dev_app(maildir: Path) -> Flask:
    return make_app("development", DEV_SMTP_MAILDIR=str(maildir))


@pytest.fixture
def dev_client(dev_app: Flask) -> FlaskClient:
    return dev_app.test_client()


def page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status)
    return response.get_data(as_text=True)


# --- the folder ------------------------------------------------------------------------------


def test_the_folder_lists_eml_files_newest_first(catcher: SmtpCatcher, maildir: Path) -> None:
    paths = [catcher.save(email(f"Message {n}")) for n in range(3)]
    (maildir / ".20990101T000000.000000-0000.eml.tmp").write_bytes(b"half")  # being written
    (maildir / ".hidden.eml").write_bytes(b"x")
    (maildir / "notes.txt").write_bytes(b"x")
    (maildir / "folder.eml").mkdir()
    outside = maildir.parent / "secret.eml"
    outside.write_bytes(email("Secret"))
    (maildir / "link.eml").symlink_to(outside)

    files = folder.caught_files(maildir)
    assert [f.path for f in files] == paths[::-1]
    assert files[0].name == paths[-1].name.removesuffix(".eml")
    assert files[0].size == paths[-1].stat().st_size
    stamp = datetime.strptime(paths[-1].name[:22], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    assert files[0].received == stamp


def test_a_file_put_there_by_hand_is_dated_by_its_mtime(maildir: Path) -> None:
    maildir.mkdir()
    (maildir / "by-hand.eml").write_bytes(email())
    os.utime(maildir / "by-hand.eml", (1_800_000_000, 1_800_000_000))
    (received,) = [f.received for f in folder.caught_files(maildir)]
    assert received == datetime.fromtimestamp(1_800_000_000, UTC)


def test_no_folder_no_messages(tmp_path: Path) -> None:
    assert folder.caught_files(tmp_path / "missing") == []
    (tmp_path / "a-file").write_bytes(b"")
    assert folder.caught_files(tmp_path / "a-file") == []


@pytest.mark.parametrize(
    "name", ["../secret", "..", "/etc/passwd", "link", ".hidden", "x/../../secret", ""]
)
def test_only_listed_names_are_found(catcher: SmtpCatcher, maildir: Path, name: str) -> None:
    catcher.save(email())
    (maildir.parent / "secret.eml").write_bytes(email("Secret"))
    (maildir / "link.eml").symlink_to(maildir.parent / "secret.eml")
    (maildir / ".hidden.eml").write_bytes(email("Hidden"))
    assert folder.find(maildir, name) is None


# --- reading a message -----------------------------------------------------------------------


def test_a_message_is_read_in_full() -> None:
    raw = email(
        "Rapport: =?not-an-encoded-word?= ü 报告",
        attachments=[
            ("报告.pdf", "application/pdf", b"%PDF-1.4 " + bytes(100)),
            ("notes.txt", "text/plain", b"a text attachment"),
        ],
    )
    message = parsing.read_message(raw)
    assert message.summary.subject == "Rapport: =?not-an-encoded-word?= ü 报告"
    assert message.summary.to == "张伟 <zhang@example.com>, ada@example.com"
    assert message.summary.sender == "Flasky Admin <flasky@example.com>"
    assert message.text == "Hello, Ada.\n"
    assert message.html is not None and HTML in message.html
    assert [(a.index, a.filename, a.content_type, a.size) for a in message.attachments] == [
        (0, "报告.pdf", "application/pdf", 109),
        (1, "notes.txt", "text/plain", 17),
    ]
    assert message.attachments[0].data == b"%PDF-1.4 " + bytes(100)
    headers = dict(message.headers)
    assert headers["Subject"] == message.summary.subject  # decoded, not =?utf-8?...
    assert headers["Date"] == "Sun, 29 Nov 2026 10:00:00 +0000"
    assert message.problem is None


def test_the_summary_needs_only_the_header_section() -> None:
    raw = email("A subject")
    head = raw[: raw.index(b"\n\n") + 2]
    assert parsing.read_summary(head) == parsing.read_message(raw).summary


def test_a_text_only_message_has_no_html_and_no_attachments() -> None:
    message = EmailMessage()
    message["Subject"] = "Plain"
    message.set_content("just text")
    read = parsing.read_message(message.as_bytes())
    assert (read.text, read.html, read.attachments) == ("just text\n", None, [])


def _valid_unicode(*texts: str | None) -> bool:
    return all(text is None or text.encode("utf-8") is not None for text in texts)


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_mail_is_read_as_far_as_it_goes(raw: bytes) -> None:
    message = parsing.read_message(raw)
    summary = parsing.read_summary(raw[: parsing.HEAD_BYTES])
    texts = [message.text, message.html, summary.subject, summary.to, summary.sender]
    texts += [value for header in message.headers for value in header]
    texts += [a.filename for a in message.attachments]
    assert _valid_unicode(*texts)  # no lone surrogate: the page can be encoded
    for attachment in message.attachments:
        assert "/" not in attachment.filename and not attachment.filename.startswith(".")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("报告.pdf", "报告.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ada\\evil.exe", "evil.exe"),
        ('a"b;c\r\nd.txt', "a_b_c__d.txt"),
        ("..", "part-3.pdf"),
        ("", "part-3.pdf"),
        (None, "part-3.pdf"),
        ("x" * 300, "x" * 150),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert parsing.safe_filename(name, 3, "application/pdf") == expected


def test_safe_filename_without_a_known_type() -> None:
    assert parsing.safe_filename(None, 0, "application/x-unknown-thing") == "part-0.bin"


# --- the pages -------------------------------------------------------------------------------


def test_the_list_shows_subject_to_and_time_newest_first(
    catcher: SmtpCatcher, dev_client: FlaskClient
) -> None:
    first = catcher.save(email("=?utf-8?q?First_=C3=BC?="))
    second = catcher.save(email("Second"))
    html = page(dev_client, "/dev/inbox/")
    assert html.index("Second") < html.index("First ü")
    assert "张伟 &lt;zhang@example.com&gt;, ada@example.com" in html
    assert f'href="/dev/inbox/{second.stem}"' in html and f'href="/dev/inbox/{first.stem}"' in html
    stamp = datetime.strptime(second.name[:22], "%Y%m%dT%H%M%S.%f")
    assert (
        f'<time datetime="{stamp:%Y-%m-%dT%H:%M:%SZ}" title="{stamp:%Y-%m-%d %H:%M:%S} UTC" '
        f"data-seconds>{stamp:%Y-%m-%d %H:%M:%S} UTC</time>"
    ) in html
    assert "2 messages" in html


def test_an_empty_or_missing_folder_is_an_empty_list(dev_client: FlaskClient) -> None:
    assert "No mail yet" in page(dev_client, "/dev/inbox/")


def test_the_list_is_paginated(catcher: SmtpCatcher, dev_client: FlaskClient) -> None:
    for number in range(PER_PAGE + 2):
        catcher.save(email(f"Number {number:03d}"))
    first = page(dev_client, "/dev/inbox/")
    assert "Number 051" in first and "Number 002" in first and "Number 001" not in first
    assert "Page 1 of 2" in first and 'href="/dev/inbox/?page=2"' in first
    second = page(dev_client, "/dev/inbox/?page=2")
    assert "Number 001" in second and "Number 000" in second and "Number 002" not in second
    assert "Page 2 of 2" in page(dev_client, "/dev/inbox/?page=99")
    assert "Page 1 of 2" in page(dev_client, "/dev/inbox/?page=-1")


def test_a_message_page_shows_everything(catcher: SmtpCatcher, dev_client: FlaskClient) -> None:
    path = catcher.save(
        email("Hello <Ada>", attachments=[("报告.pdf", "application/pdf", b"%PDF")])
    )
    html = page(dev_client, f"/dev/inbox/{path.stem}")
    assert "<h1" in html and "Hello &lt;Ada&gt;" in html
    assert '<pre class="email-text-body">Hello, Ada.\n</pre>' in html
    frame = re.search(r"<iframe [^>]*>", html)
    assert frame is not None
    assert " sandbox " in frame.group(0) and "allow-" not in frame.group(0)
    assert f'src="/dev/inbox/{path.stem}/body.html"' in frame.group(0)
    assert HTML not in html  # the HTML body is never markup of this page
    assert f'href="/dev/inbox/{path.stem}/attachments/0"' in html and "报告.pdf" in html
    assert '<th scope="row">Subject</th>' in html
    assert f'href="/dev/inbox/{path.stem}/raw"' in html


def test_the_html_body_is_served_alone_under_its_own_policy(
    catcher: SmtpCatcher, dev_client: FlaskClient
) -> None:
    path = catcher.save(email(html='<p>Hi</p><img src="https://tracker.example/x.gif">'))
    response = dev_client.get(f"/dev/inbox/{path.stem}/body.html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == BODY_POLICY
    assert "default-src 'none'" in BODY_POLICY and "sandbox" in BODY_POLICY
    assert "script-src" not in BODY_POLICY and "https:" not in BODY_POLICY
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "<p>Hi</p>" in response.get_data(as_text=True)


def test_the_page_itself_keeps_the_apps_policy(
    catcher: SmtpCatcher, dev_client: FlaskClient
) -> None:
    from web.security import CONTENT_SECURITY_POLICY

    path = catcher.save(email())
    for url in ("/dev/inbox/", f"/dev/inbox/{path.stem}"):
        assert dev_client.get(url).headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_an_attachment_downloads_under_a_safe_name(
    catcher: SmtpCatcher, dev_client: FlaskClient
) -> None:
    attachments = [
        ("报告.pdf", "application/pdf", b"%PDF-1.4"),
        ("../../evil.html", "text/html", b"<script>alert(1)</script>"),
    ]
    path = catcher.save(email(attachments=attachments))
    response = dev_client.get(f"/dev/inbox/{path.stem}/attachments/0")
    assert response.status_code == 200 and response.data == b"%PDF-1.4"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf" in response.headers["Content-Disposition"]
    evil = dev_client.get(f"/dev/inbox/{path.stem}/attachments/1")
    assert evil.mimetype == "application/octet-stream"
    assert evil.headers["Content-Disposition"] == "attachment; filename=evil.html"
    assert evil.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in evil.headers["Content-Security-Policy"]
    assert dev_client.get(f"/dev/inbox/{path.stem}/attachments/2").status_code == 404


def test_the_raw_message_is_plain_text(catcher: SmtpCatcher, dev_client: FlaskClient) -> None:
    raw = email()
    path = catcher.save(raw)
    response = dev_client.get(f"/dev/inbox/{path.stem}/raw")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.data == raw


@pytest.mark.parametrize(
    "path",
    [
        "/dev/inbox/nope",
        "/dev/inbox/..%2Fsecret",
        "/dev/inbox/%2e%2e",
        "/dev/inbox/link",
        "/dev/inbox/link/raw",
        "/dev/inbox/link/body.html",
        "/dev/inbox/link/attachments/0",
        "/dev/inbox/..%2Fsecret/raw",
    ],
)
def test_names_the_folder_does_not_list_are_not_found(
    maildir: Path, dev_client: FlaskClient, path: str
) -> None:
    maildir.mkdir()
    (maildir.parent / "secret.eml").write_bytes(email("Secret"))
    (maildir / "link.eml").symlink_to(maildir.parent / "secret.eml")
    response = dev_client.get(path)
    assert response.status_code == 404
    assert b"Secret" not in response.data


def test_a_message_without_html_has_no_body_page(
    catcher: SmtpCatcher, dev_client: FlaskClient
) -> None:
    message = EmailMessage()
    message.set_content("text only")
    path = catcher.save(message.as_bytes())
    assert "No HTML body." in page(dev_client, f"/dev/inbox/{path.stem}")
    assert dev_client.get(f"/dev/inbox/{path.stem}/body.html").status_code == 404


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_mail_never_gives_an_error_page(
    catcher: SmtpCatcher, dev_client: FlaskClient, raw: bytes
) -> None:
    path = catcher.save(raw)
    page(dev_client, "/dev/inbox/")
    page(dev_client, f"/dev/inbox/{path.stem}")
    assert dev_client.get(f"/dev/inbox/{path.stem}/raw").data == raw  # bytes as received
    assert dev_client.get(f"/dev/inbox/{path.stem}/body.html").status_code in (200, 404)
    assert dev_client.get(f"/dev/inbox/{path.stem}/attachments/0").status_code in (200, 404)


def test_the_previews_page_links_to_the_caught_mail(dev_client: FlaskClient) -> None:
    assert 'href="/dev/inbox/"' in page(dev_client, "/dev/mail/")


def test_the_folder_defaults_to_the_instance_mail_folder() -> None:
    app = make_app("development")
    assert app.config["DEV_SMTP_MAILDIR"] == os.path.join(app.instance_path, "mail")


@pytest.mark.parametrize("config_name", ["testing", "production"])
def test_no_caught_mail_outside_development(
    config_name: str, catcher: SmtpCatcher, maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = catcher.save(email(attachments=[("a.pdf", "application/pdf", b"%PDF")]))
    monkeypatch.setenv("SECRET_KEY", "a-production-key-for-the-tests-0123")
    client = make_app(config_name, DEV_SMTP_MAILDIR=str(maildir)).test_client()
    for url in ("/dev/inbox/", f"/dev/inbox/{path.stem}", f"/dev/inbox/{path.stem}/body.html"):
        assert client.get(url).status_code == 404
    for url in (f"/dev/inbox/{path.stem}/raw", f"/dev/inbox/{path.stem}/attachments/0"):
        assert client.get(url).status_code == 404
