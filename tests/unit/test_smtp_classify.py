"""worker/smtp.py's `classify`: every way a delivery fails, as a reason and "try again later?".

4xx replies, timeouts and lost connections are retried; 5xx replies, bad credentials, an
untrusted certificate and settings the server cannot honour fail at once. The real SMTP
servers of tests/test_pipeline.py and tests/test_tls_and_auth.py prove the whole path.
"""

from __future__ import annotations

import smtplib
import ssl

import pytest

from worker.smtp import DeliveryError, SMTPSettings, _data_block, classify


@pytest.mark.parametrize(
    ("exc", "reason", "transient"),
    [
        (
            smtplib.SMTPConnectError(421, b"too busy"),
            "greeting refused: 421 too busy",
            True,
        ),
        (
            smtplib.SMTPConnectError(554, b"no SMTP service here"),
            "greeting refused: 554 no SMTP service here",
            False,
        ),
        (smtplib.SMTPHeloError(501, b"bad EHLO"), "EHLO refused: 501 bad EHLO", False),
        (
            smtplib.SMTPSenderRefused(451, b"4.7.1 try later", "flasky@example.com"),
            "MAIL FROM refused: 451 4.7.1 try later",
            True,
        ),
        (
            smtplib.SMTPSenderRefused(553, b"5.7.1 not allowed", "flasky@example.com"),
            "MAIL FROM refused: 553 5.7.1 not allowed",
            False,
        ),
        (smtplib.SMTPDataError(451, b"local error"), "DATA refused: 451 local error", True),
        (smtplib.SMTPDataError(554, "spam"), "DATA refused: 554 spam", False),
        (smtplib.SMTPResponseException(452, b"full"), "SMTP refused: 452 full", True),
        (
            smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
            "authentication failed: 535 5.7.8 bad credentials",
            False,
        ),
        (
            smtplib.SMTPAuthenticationError(454, b"4.7.0 try later"),
            "authentication failed: 454 4.7.0 try later",
            True,
        ),
        (
            smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."),
            "server does not support what the settings ask: STARTTLS extension not supported",
            False,
        ),
        (TimeoutError("timed out"), "timed out waiting for the SMTP server", True),
        (ConnectionRefusedError(111, "Connection refused"), "connection failed: ", True),
        (
            smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
            "connection lost: Connection unexpectedly closed",
            True,
        ),
        (smtplib.SMTPServerDisconnected(), "connection lost: server hung up", True),
        (RuntimeError("boom"), "unexpected error: RuntimeError: boom", True),
    ],
    ids=lambda value: value if isinstance(value, bool) else None,
)
def test_each_failure_gets_a_reason_and_is_retried_only_if_it_can_succeed_later(
    exc: BaseException, reason: str, transient: bool
) -> None:
    error = classify(exc)
    assert isinstance(error, DeliveryError)
    assert error.reason.startswith(reason), error.reason
    assert str(error) == error.reason
    assert error.transient is transient


def test_a_read_timeout_reported_as_a_disconnection_is_a_timeout() -> None:
    """smtplib turns a socket timeout while reading a reply into SMTPServerDisconnected."""
    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed") from None
    except smtplib.SMTPServerDisconnected as exc:
        exc.__context__ = TimeoutError("timed out")
        error = classify(exc)
    assert (error.reason, error.transient) == ("timed out waiting for the SMTP server", True)


def _certificate_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code, exc.verify_message = code, message
    return exc


def test_an_untrusted_certificate_fails_at_once_and_says_how_to_trust_it() -> None:
    error = classify(_certificate_error(18, "self-signed certificate"))
    assert error.transient is False
    assert error.reason == (
        "TLS certificate not trusted (self-signed certificate); set MAIL_CA_FILE to trust a "
        "private CA"
    )


@pytest.mark.parametrize(
    ("code", "message", "advice"),
    [
        (62, "Hostname mismatch, certificate is not valid for 'mx.example.com'.", "MAIL_SERVER"),
        (64, "IP address mismatch, certificate is not valid for '127.0.0.1'.", "MAIL_SERVER"),
        (10, "certificate has expired", "renew"),
    ],
)
def test_a_certificate_for_another_name_or_expired_does_not_blame_the_ca(
    code: int, message: str, advice: str
) -> None:
    """MAIL_CA_FILE cannot fix these: the advice names what can."""
    error = classify(_certificate_error(code, message))
    assert error.transient is False
    assert message in error.reason and advice in error.reason
    assert "MAIL_CA_FILE" not in error.reason


def test_all_recipients_refused_names_each_and_retries_if_any_refusal_is_temporary() -> None:
    permanent = smtplib.SMTPRecipientsRefused(
        {"a@example.com": (550, b"5.1.1 no such user"), "b@example.com": (553, b"bad")}
    )
    error = classify(permanent)
    assert error.transient is False
    assert error.reason == (
        "all recipients refused: a@example.com: 550 5.1.1 no such user; b@example.com: 553 bad"
    )
    greylisted = smtplib.SMTPRecipientsRefused(
        {"a@example.com": (550, b"no such user"), "b@example.com": (450, b"greylisted")}
    )
    assert classify(greylisted).transient is True


def test_a_delivery_error_is_passed_through() -> None:
    error = DeliveryError("already classified", transient=False)
    assert classify(error) is error


def test_the_settings_come_from_the_config_and_never_show_the_password() -> None:
    config = {
        "MAIL_SERVER": "smtp.example.com",
        "MAIL_PORT": 587,
        "MAIL_USE_TLS": True,
        "MAIL_USE_SSL": False,
        "MAIL_USERNAME": "me",
        "MAIL_PASSWORD": "pw-s3cr3t",
        "MAIL_TIMEOUT": 10.0,
        "MAIL_DATA_TIMEOUT": 120.0,
        "MAIL_CA_FILE": None,
        "MAIL_IDLE_CHECK_SECONDS": 10.0,
        "MAIL_MAX_MESSAGES_PER_CONNECTION": 100,
    }
    settings = SMTPSettings.from_config(config)
    assert (settings.server, settings.port, settings.use_tls) == ("smtp.example.com", 587, True)
    assert settings.password == "pw-s3cr3t"
    assert "s3cr3t" not in repr(settings)
    context = settings.tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        (b".hidden\r\n..two\r\nend\r\n", b"..hidden\r\n...two\r\nend\r\n.\r\n"),
        (b"no final line break", b"no final line break\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),  # a lone dot in the body does not end the message
    ],
)
def test_the_data_block_doubles_leading_dots_and_ends_with_a_dot_line(
    body: bytes, sent: bytes
) -> None:
    header = b"Subject: x\r\n\r\n"
    assert _data_block(header + body) == header + sent
