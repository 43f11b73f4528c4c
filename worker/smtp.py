"""SMTP delivery: one reused connection per worker thread, bounded waits, classified errors.

Flask-Mail builds the message (worker/message.py) but its own connection is not used for
delivery: it has no socket timeout, does not verify the server's certificate on STARTTLS, and
throws away the list of refused recipients. This module talks to the server with smtplib
directly so that every wait is bounded (`MAIL_TIMEOUT`; the reply to the final "." by the
longer `MAIL_DATA_TIMEOUT`), TLS is verified (optionally against `MAIL_CA_FILE`), each attempt
logs in once, and each outcome (the 250 reply, partial refusals, the failing reply) reaches
the outbox row.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SMTPSettings:
    server: str
    port: int
    use_tls: bool
    use_ssl: bool
    username: str | None
    password: str | None = field(repr=False)
    timeout: float
    # The wait for the reply to the final ".": the server may be scanning or relaying the
    # message, and giving up here is what turns a slow relay into a duplicate (RFC 5321
    # 4.5.3.2.6 suggests 10 minutes; web/config.py keeps it inside the task's time limit).
    data_timeout: float
    ca_file: str | None
    # A connection idle longer than this is checked with NOOP before it carries a message.
    idle_check_after: float
    # Reconnect after this many messages: servers limit messages per session.
    max_messages_per_connection: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SMTPSettings:
        return cls(
            server=config["MAIL_SERVER"],
            port=config["MAIL_PORT"],
            use_tls=config["MAIL_USE_TLS"],
            use_ssl=config["MAIL_USE_SSL"],
            username=config["MAIL_USERNAME"],
            password=config["MAIL_PASSWORD"],
            timeout=config["MAIL_TIMEOUT"],
            data_timeout=config["MAIL_DATA_TIMEOUT"],
            ca_file=config["MAIL_CA_FILE"],
            idle_check_after=config["MAIL_IDLE_CHECK_SECONDS"],
            max_messages_per_connection=config["MAIL_MAX_MESSAGES_PER_CONNECTION"],
        )

    def tls_context(self) -> ssl.SSLContext:
        """Certificate and host name verification on, trusting `ca_file` if given."""
        return ssl.create_default_context(cafile=self.ca_file)


@dataclass(frozen=True)
class DeliveryReport:
    reply: str  # the server's reply to the end of DATA, e.g. "250 2.0.0 Ok: queued as X"
    refused: dict[str, str]  # recipients refused while others were accepted


class DeliveryError(Exception):
    """Delivery did not happen. `transient` says whether trying again later can help;
    `error_class` names what was raised (the attempt log shows it beside the reason)."""

    def __init__(self, reason: str, *, transient: bool, error_class: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.error_class = error_class or type(self).__name__


class _StaleConnection(smtplib.SMTPServerDisconnected):
    """The server had closed the connection before this message started."""


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}".strip()


def _is_transient_code(code: int) -> bool:
    """4xx replies are temporary by definition (RFC 5321 4.2.1); anything not 5xx is retried."""
    return not 500 <= code < 600


def classify(exc: BaseException) -> DeliveryError:
    """Turn whatever smtplib, ssl or the socket raised into a DeliveryError."""
    if isinstance(exc, DeliveryError):
        return exc
    error = _classify(exc)
    error.error_class = type(exc).__name__
    return error


def _classify(exc: BaseException) -> DeliveryError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = {addr: _reply(code, msg) for addr, (code, msg) in exc.recipients.items()}
        transient = any(_is_transient_code(code) for code, _ in exc.recipients.values())
        detail = "; ".join(f"{addr}: {reply}" for addr, reply in replies.items())
        return DeliveryError(f"all recipients refused: {detail}", transient=transient)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"authentication failed: {_reply(exc.smtp_code, exc.smtp_error)}",
            transient=400 <= exc.smtp_code < 500,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        stage = {
            smtplib.SMTPConnectError: "greeting",
            smtplib.SMTPHeloError: "EHLO",
            smtplib.SMTPSenderRefused: "MAIL FROM",
            smtplib.SMTPDataError: "DATA",
        }.get(type(exc), "SMTP")
        return DeliveryError(
            f"{stage} refused: {_reply(exc.smtp_code, exc.smtp_error)}",
            transient=_is_transient_code(exc.smtp_code),
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(
            f"server does not support what the settings ask: {exc}", transient=False
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(_certificate_advice(exc), transient=False)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):  # how smtplib reports a read timeout
            return DeliveryError("timed out waiting for the SMTP server", transient=True)
        return DeliveryError(f"connection lost: {str(exc) or 'server hung up'}", transient=True)
    if isinstance(exc, TimeoutError | socket.timeout):
        return DeliveryError("timed out waiting for the SMTP server", transient=True)
    if isinstance(exc, OSError):
        return DeliveryError(f"connection failed: {exc}", transient=True)
    return DeliveryError(f"unexpected error: {type(exc).__name__}: {exc}", transient=True)


# OpenSSL's verify codes (X509_V_ERR_*) that mean "issued by a CA this machine does not trust".
_UNTRUSTED_ISSUER = {18, 19, 20, 21}
_EXPIRED = 10
_NAME_MISMATCH = {62, 64}  # a host name, an IP address


def _certificate_advice(exc: ssl.SSLCertVerificationError, names: Sequence[str] = ()) -> str:
    """What is wrong with the server's certificate, and the setting that fixes it."""
    if exc.verify_code in _NAME_MISMATCH:
        held = f"is for {', '.join(names)}" if names else "does not hold this name"
        return (
            f"TLS certificate name mismatch: the certificate {held}, and MAIL_SERVER asked for "
            f"another ({exc.verify_message}); set MAIL_SERVER to a name the certificate holds"
        )
    if exc.verify_code in _UNTRUSTED_ISSUER:
        return (
            f"TLS certificate not trusted ({exc.verify_message}); set MAIL_CA_FILE to trust a "
            "private CA"
        )
    if exc.verify_code == _EXPIRED:
        return f"TLS certificate expired ({exc.verify_message}): the server must renew it"
    return f"TLS certificate refused ({exc.verify_message})"


def _names_in(certificate: Mapping[str, Any]) -> list[str]:
    """The names a certificate (as `getpeercert()` gives it) is valid for."""
    names = [
        value
        for kind, value in certificate.get("subjectAltName", ())
        if kind in ("DNS", "IP Address")
    ]
    if not names:
        for rdn in certificate.get("subject", ()):
            names += [value for key, value in rdn if key == "commonName"]
    return names


# The AUTH mechanisms flasky speaks, in the order it picks one the server offers.
_AUTH_METHODS = {"PLAIN": "auth_plain", "LOGIN": "auth_login", "CRAM-MD5": "auth_cram_md5"}
_LINE_START_DOT = re.compile(rb"(?m)^\.")


def _data_block(raw: bytes) -> bytes:
    """What follows DATA: the message with each line's leading "." doubled (RFC 5321 4.5.2),
    then the final "."."""
    stuffed = _LINE_START_DOT.sub(b"..", raw)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


class SMTPConnection:
    """One SMTP session, kept open between messages and reopened when needed."""

    def __init__(self, settings: SMTPSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._sent_on_connection = 0
        self._last_used = 0.0
        self._deadline = 0.0

    def _timeout(self) -> float:
        """The socket timeout for the next wait: MAIL_TIMEOUT, or less near the deadline."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the delivery took longer than its time budget")
        return min(self.settings.timeout, left)

    def _command(self, smtp: smtplib.SMTP) -> smtplib.SMTP:
        """`smtp`, with its socket timeout set for the next command."""
        if smtp.sock is not None:
            smtp.sock.settimeout(self._timeout())
        return smtp

    def send(
        self, envelope_from: str, recipients: list[str], raw: bytes, *, budget: float
    ) -> DeliveryReport:
        """Deliver one message within `budget` seconds; raise DeliveryError on failure.

        A connection that was idle is checked with NOOP first; a reused connection that turns
        out to be dead before anything was sent is reopened once. Every socket wait is
        bounded by MAIL_TIMEOUT and by what is left of the budget, so a server that answers
        slowly to each command cannot hold a worker thread past it (the threads pool has no
        time limits of its own).
        """
        self._deadline = time.monotonic() + budget
        reused = self._usable_connection()
        try:
            try:
                smtp = self._smtp or self._open()
                return self._transaction(smtp, envelope_from, recipients, raw)
            except _StaleConnection:
                self.close()
                if not reused:
                    raise
                return self._transaction(self._open(), envelope_from, recipients, raw)
        except Exception as exc:
            self.close()
            raise classify(exc) from exc
        finally:
            self._last_used = time.monotonic()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _usable_connection(self) -> bool:
        """Keep the open connection if it is fresh enough; return whether one is kept."""
        if self._smtp is None:
            return False
        if self._sent_on_connection >= self.settings.max_messages_per_connection:
            self.close()
            return False
        if time.monotonic() - self._last_used > self.settings.idle_check_after:
            try:
                code, _ = self._command(self._smtp).noop()
            except (smtplib.SMTPException, OSError):
                code = 0
            if code != 250:
                self.close()
                return False
        return True

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.use_ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.server, s.port, timeout=self._timeout(), context=s.tls_context()
                )
            else:
                smtp = smtplib.SMTP(s.server, s.port, timeout=self._timeout())
            if s.use_tls:
                self._command(smtp).starttls(context=s.tls_context())
            if s.username and s.password:
                self._log_in(smtp, s.username, s.password)
        except ssl.SSLCertVerificationError as exc:
            names = self._certificate_names() if exc.verify_code in _NAME_MISMATCH else []
            raise DeliveryError(
                _certificate_advice(exc, names), transient=False, error_class=type(exc).__name__
            ) from exc
        except (smtplib.SMTPException, ssl.SSLError) as exc:
            raise classify(exc) from exc
        except OSError as exc:  # refused, unreachable, name not resolved, timed out
            raise DeliveryError(
                f"connection to {s.server}:{s.port} failed: {exc}",
                transient=True,
                error_class=type(exc).__name__,
            ) from exc
        self._smtp = smtp
        self._sent_on_connection = 0
        return smtp

    def _log_in(self, smtp: smtplib.SMTP, username: str, password: str) -> None:
        """AUTH with one mechanism the server offers: one try per attempt. (smtplib's
        login() tries the next mechanism after a 535, so a wrong password counted twice
        toward the server's lockout.)"""
        self._command(smtp).ehlo_or_helo_if_needed()
        if not smtp.has_extn("auth"):
            if smtp.has_extn("starttls"):
                reason = (
                    "the server offers AUTH only after STARTTLS, and MAIL_USE_TLS is off: "
                    "set MAIL_USE_TLS=true"
                )
            else:
                reason = (
                    "the server offers no AUTH, but MAIL_USERNAME and MAIL_PASSWORD are set: "
                    "check MAIL_SERVER and MAIL_PORT (a submission port, 587 or 465, "
                    "usually authenticates)"
                )
            raise DeliveryError(reason, transient=False, error_class="SMTPNotSupportedError")
        offered = smtp.esmtp_features["auth"].upper().split()
        mechanism = next((name for name in _AUTH_METHODS if name in offered), None)
        if mechanism is None:
            raise DeliveryError(
                f"the server offers AUTH {' '.join(offered)}, none of which flasky speaks "
                f"({', '.join(_AUTH_METHODS)})",
                transient=False,
                error_class="SMTPNotSupportedError",
            )
        smtp.user, smtp.password = username, password
        authenticate = getattr(smtp, _AUTH_METHODS[mechanism])
        self._command(smtp).auth(mechanism, authenticate, initial_response_ok=True)

    def _certificate_names(self) -> list[str]:
        """The names the server's certificate holds, read over a second connection that
        checks the chain but not the name; [] if that fails too."""
        s = self.settings
        context = s.tls_context()
        context.check_hostname = False
        smtp: smtplib.SMTP | None = None
        try:
            if s.use_ssl:
                smtp = smtplib.SMTP_SSL(s.server, s.port, timeout=s.timeout, context=context)
            else:
                smtp = smtplib.SMTP(s.server, s.port, timeout=s.timeout)
                smtp.starttls(context=context)
            certificate = smtp.sock.getpeercert() if isinstance(smtp.sock, ssl.SSLSocket) else None
            return _names_in(certificate or {})
        except (smtplib.SMTPException, OSError):
            return []
        finally:
            if smtp is not None:
                smtp.close()

    def _transaction(
        self, smtp: smtplib.SMTP, envelope_from: str, recipients: list[str], raw: bytes
    ) -> DeliveryReport:
        self._command(smtp).ehlo_or_helo_if_needed()
        self._check_size(smtp, len(raw))
        options = []
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(raw)}")  # RFC 1870: the server may refuse it at once
        if not raw.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")  # Flask-Mail sends UTF-8 bodies as 8bit
        try:
            code, message = self._command(smtp).mail(envelope_from, options)
        except smtplib.SMTPServerDisconnected as exc:
            raise _StaleConnection from exc
        if code != 250:
            self._reset(smtp)
            raise smtplib.SMTPSenderRefused(code, message, envelope_from)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, message = self._command(smtp).rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, message)
        if len(refused) == len(recipients):
            self._reset(smtp)
            raise smtplib.SMTPRecipientsRefused(refused)
        code, message = self._data(smtp, raw)
        if code != 250:
            self._reset(smtp)
            raise smtplib.SMTPDataError(code, message)
        self._sent_on_connection += 1
        return DeliveryReport(
            reply=_reply(code, message),
            refused={addr: _reply(c, m) for addr, (c, m) in refused.items()},
        )

    @staticmethod
    def _check_size(smtp: smtplib.SMTP, size: int) -> None:
        """Fail for good, before MAIL FROM, a message larger than the server's SIZE."""
        declared = smtp.esmtp_features.get("size", "") if smtp.has_extn("size") else ""
        limit = int(declared) if declared.isdigit() else 0  # 0 or none: no limit declared
        if limit and size > limit:
            raise DeliveryError(
                f"the message is {size:,} bytes and the server takes at most {limit:,} "
                "(its SIZE): the email cannot go through this server as it is",
                transient=False,
                error_class="MessageTooLarge",
            )

    def _data(self, smtp: smtplib.SMTP, raw: bytes) -> tuple[int, bytes]:
        """DATA, the message, and the server's reply to its final "." (what smtplib's data()
        does, but with MAIL_DATA_TIMEOUT for that last reply, even past the batch's budget)."""
        code, message = self._command(smtp).docmd("DATA")
        if code != 354:
            return code, message
        self._command(smtp).send(_data_block(raw))
        if smtp.sock is not None:
            smtp.sock.settimeout(self.settings.data_timeout)
        return smtp.getreply()

    @staticmethod
    def _reset(smtp: smtplib.SMTP) -> None:
        """RSET after a refusal so the connection can carry the next message."""
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            smtp.close()


_local = threading.local()
_all_connections: weakref.WeakSet[SMTPConnection] = weakref.WeakSet()


def connection_for(settings: SMTPSettings) -> SMTPConnection:
    """This thread's connection for these settings (one per worker process with prefork)."""
    current: SMTPConnection | None = getattr(_local, "connection", None)
    if current is None or current.settings != settings:
        if current is not None:
            current.close()
        current = SMTPConnection(settings)
        _local.connection = current
        _all_connections.add(current)
    return current


def close_all() -> None:
    """Close every open connection of this process (worker shutdown)."""
    for connection in list(_all_connections):
        connection.close()
