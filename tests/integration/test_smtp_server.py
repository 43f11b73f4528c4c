"""Tests for devtools/smtp_server.py, with the standard library's smtplib as the client."""

from __future__ import annotations

import base64
import contextlib
import email.policy
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
import trustme

from devtools.smtp_server import ReceivedMessage, SMTPServer
from devtools.waiting import wait_until

SENDER = "outbox@flasky.test"
RECIPIENT = "alice@example.com"
USER, PASSWORD = "flasky", "s3cret"


@pytest.fixture
def server() -> Iterator[SMTPServer]:
    with SMTPServer() as smtp:
        yield smtp


@dataclass
class TLS:
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext  # trusts only the test CA, and checks the hostname


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TLS(server_context, ssl.create_default_context(cafile=str(ca_file)))


def make_message(subject: str = "Hello") -> bytes:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = RECIPIENT
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="flasky.test")
    message.set_content("Hi there")
    return message.as_bytes(policy=email.policy.SMTP)


def connect(server: SMTPServer, timeout: float = 5) -> smtplib.SMTP:
    return smtplib.SMTP(server.host, server.port, timeout=timeout)


def send(server: SMTPServer, recipients: list[str] | None = None) -> dict:
    with connect(server) as client:
        return client.sendmail(SENDER, recipients or [RECIPIENT], make_message())


def test_delivery_stores_raw_bytes_and_envelope(server: SMTPServer) -> None:
    # 8-bit UTF-8 content, a non-ASCII sender (SMTPUTF8) and a line starting with "."
    # (which smtplib dot-stuffs and the server must un-stuff).
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg?= <j\xc3\xb6rg@flasky.test>\r\n"
        b"To: alice@example.com\r\n"
        b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n"
        b"Message-ID: <abc.123@flasky.test>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b"Gr\xc3\xbc\xc3\x9fe!\r\n"
        b".a line starting with a dot\r\n"
    )
    with connect(server) as client:
        refused = client.sendmail(
            "jörg@flasky.test", [RECIPIENT], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )

    assert refused == {}
    [message] = server.wait_for_messages(1)
    assert message == ReceivedMessage("jörg@flasky.test", [RECIPIENT], raw)
    assert message.message_id == "<abc.123@flasky.test>"
    assert message.parsed()["Subject"] == "Grüße"
    assert message.parsed().get_content().splitlines() == [
        "Grüße!",
        ".a line starting with a dot",
    ]
    assert ReceivedMessage(SENDER, [RECIPIENT], b"Subject: x\r\n\r\nhi\r\n").message_id is None


@pytest.mark.parametrize(
    ("stage", "reply", "times", "error"),
    [
        ("greeting", "554 5.3.2 Not accepting mail", 1, smtplib.SMTPConnectError),
        # smtplib falls back from EHLO to HELO, so refuse both.
        ("ehlo", "550 5.7.1 Go away", 2, smtplib.SMTPHeloError),
        ("mail", "451 4.7.1 Try again later", 1, smtplib.SMTPSenderRefused),
        ("rcpt", "550 5.1.1 No such user", 1, smtplib.SMTPRecipientsRefused),
        ("data", "554 5.5.1 No valid recipients", 1, smtplib.SMTPDataError),
        ("eom", "452 4.3.1 Insufficient storage", 1, smtplib.SMTPDataError),
    ],
)
def test_reply_at_stage_raises_smtplib_error_with_scripted_code(
    server: SMTPServer, stage: str, reply: str, times: int, error: type[Exception]
) -> None:
    server.reply_at(stage, reply, times=times)

    with pytest.raises(error) as info:
        send(server)

    code, text = reply.split(" ", 1)
    if isinstance(info.value, smtplib.SMTPRecipientsRefused):
        assert info.value.recipients == {RECIPIENT: (int(code), text.encode())}
    else:
        assert info.value.smtp_code == int(code)
        assert info.value.smtp_error == text.encode()
    assert server.messages == []
    # The fault is used up: the next attempt is delivered.
    send(server)
    server.wait_for_messages(1)


def test_faults_are_consumed_in_order_on_one_connection(server: SMTPServer) -> None:
    server.reply_at("mail", "451 4.7.1 Try again later", times=2)
    server.reply_at("mail", "452 4.3.1 Mailbox full")

    with connect(server) as client:
        codes = []
        for _ in range(3):
            with pytest.raises(smtplib.SMTPSenderRefused) as info:
                client.sendmail(SENDER, [RECIPIENT], make_message())
            codes.append(info.value.smtp_code)
        client.sendmail(SENDER, [RECIPIENT], make_message())

    assert codes == [451, 451, 452]
    assert len(server.wait_for_messages(1)) == 1
    assert server.connections == 1


def test_a_421_reply_closes_the_connection(server: SMTPServer) -> None:
    server.reply_at("mail", "421 4.3.2 Shutting down")
    with connect(server) as client:
        client.ehlo()
        assert client.mail(SENDER) == (421, b"4.3.2 Shutting down")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


def test_refuse_recipient_gives_a_partial_refusal(server: SMTPServer) -> None:
    server.refuse_recipient("Bob@Example.com", "550 5.1.1 No such user")

    refused = send(server, [RECIPIENT, "bob@example.com"])

    assert refused == {"bob@example.com": (550, b"5.1.1 No such user")}
    [message] = server.wait_for_messages(1)
    assert message.rcpt_tos == [RECIPIENT]


def test_hang_up_at_eom_disconnects_and_stores_nothing(server: SMTPServer) -> None:
    server.hang_up_at("eom")

    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(server)

    assert server.messages == []
    send(server)
    server.wait_for_messages(1)


def test_hang_at_makes_the_client_time_out_and_stop_still_returns(
    server: SMTPServer,
) -> None:
    server.hang_at("mail")
    client = connect(server, timeout=0.5)
    started = time.monotonic()
    # smtplib turns the socket timeout into SMTPServerDisconnected.
    with pytest.raises(smtplib.SMTPServerDisconnected) as info:
        client.sendmail(SENDER, [RECIPIENT], make_message())
    assert time.monotonic() - started >= 0.5
    assert isinstance(info.value.__context__, TimeoutError)

    # A second client stays connected while the server hangs on its greeting.
    server.hang_at("greeting")
    with socket.create_connection((server.host, server.port), timeout=5) as hung:
        wait_until(lambda: server.connections == 2, 5, "the second connection", interval=0.01)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
        with contextlib.suppress(ConnectionResetError):
            assert hung.recv(1) == b""  # the server closed the connection without a word


def test_stop_drops_connections_and_start_listens_on_the_same_port(
    server: SMTPServer,
) -> None:
    port = server.port
    assert port != 0
    client = connect(server)
    client.sendmail(SENDER, [RECIPIENT], make_message())

    server.stop()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()  # the reused connection sees the server go away
    with pytest.raises(ConnectionRefusedError):
        connect(server)

    server.start()
    assert server.port == port
    send(server)
    assert len(server.wait_for_messages(2)) == 2


def test_starttls_then_auth_delivers(tls: TLS) -> None:
    with (
        SMTPServer(
            starttls_context=tls.server_context, require_starttls=True, auth=(USER, PASSWORD)
        ) as smtp,
        connect(smtp) as client,
    ):
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")  # no AUTH over plaintext
        assert client.mail(SENDER)[0] == 530  # STARTTLS required first
        client.starttls(context=tls.client_context)
        client.ehlo()
        assert client.has_extn("auth")
        client.login(USER, PASSWORD)  # AUTH PLAIN
        client.sendmail(SENDER, [RECIPIENT], make_message())

        [message] = smtp.wait_for_messages(1)
        assert message.rcpt_tos == [RECIPIENT]


def test_starttls_auth_login_and_wrong_password(tls: TLS) -> None:
    with SMTPServer(starttls_context=tls.server_context, auth=(USER, PASSWORD)) as smtp:
        with connect(smtp) as client:
            client.starttls(context=tls.client_context)
            client.ehlo()
            client.user, client.password = USER, "wrong"
            with pytest.raises(smtplib.SMTPAuthenticationError) as info:
                client.auth("LOGIN", client.auth_login)
            assert info.value.smtp_code == 535
            client.password = PASSWORD
            assert client.auth("LOGIN", client.auth_login)[0] == 235

        with connect(smtp) as client:
            client.starttls(context=tls.client_context)
            with pytest.raises(smtplib.SMTPSenderRefused) as info:
                client.sendmail(SENDER, [RECIPIENT], make_message())
            assert info.value.smtp_code == 530  # MAIL without AUTH

        assert smtp.messages == []


def test_auth_over_plaintext_is_refused_when_starttls_is_offered(tls: TLS) -> None:
    credentials = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    with (
        SMTPServer(starttls_context=tls.server_context, auth=(USER, PASSWORD)) as smtp,
        connect(smtp) as client,
    ):
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", f"PLAIN {credentials}")[0] == 538


def test_implicit_tls_with_auth(tls: TLS) -> None:
    with (
        SMTPServer(implicit_tls_context=tls.server_context, auth=(USER, PASSWORD)) as smtp,
        smtplib.SMTP_SSL(smtp.host, smtp.port, context=tls.client_context, timeout=5) as client,
    ):
        client.login(USER, PASSWORD)
        client.sendmail(SENDER, [RECIPIENT], make_message())
        smtp.wait_for_messages(1)


def test_auth_without_any_tls() -> None:
    with SMTPServer(auth=(USER, PASSWORD)) as smtp, connect(smtp) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(USER, "wrong")
        client.login(USER, PASSWORD)
        client.sendmail(SENDER, [RECIPIENT], make_message())
        smtp.wait_for_messages(1)


def test_delay_per_message_delays_the_final_reply(server: SMTPServer) -> None:
    server.delay_per_message = 0.3
    started = time.monotonic()
    send(server)
    assert time.monotonic() - started >= 0.3 - 0.02  # asyncio timers may fire a hair early
    server.wait_for_messages(1)


def test_connections_counts_accepted_connections(server: SMTPServer) -> None:
    with connect(server) as client:
        client.sendmail(SENDER, [RECIPIENT], make_message("one"))
        client.sendmail(SENDER, [RECIPIENT], make_message("two"))
    assert server.connections == 1
    send(server)
    assert server.connections == 2


def test_reset_forgets_messages_faults_and_counts(server: SMTPServer) -> None:
    send(server)
    server.reply_at("mail", "451 4.7.1 Try again later")
    server.refuse_recipient(RECIPIENT, "550 5.1.1 No such user")
    server.delay_per_message = 5

    server.reset()

    assert (server.messages, server.connections, server.delay_per_message) == ([], 0, 0)
    send(server)
    assert len(server.wait_for_messages(1)) == 1


def test_wait_for_messages_explains_a_timeout(server: SMTPServer) -> None:
    send(server)
    with pytest.raises(AssertionError, match=r"expected 2 message\(s\) within 0.1s, got 1"):
        server.wait_for_messages(2, timeout=0.1)


def test_bad_scripting_is_rejected(server: SMTPServer) -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        server.hang_at("quit")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        server.reply_at("mail", "250 OK")
    with pytest.raises(ValueError, match="times"):
        server.hang_up_at("rcpt", times=0)
