"""SMTP delivery: one reused connection per worker thread, bounded waits, classified errors.

Flask-Mail builds the message (worker/message.py) but its own connection is not used for
delivery: it has no socket timeout, does not verify the server's certificate on STARTTLS, and
throws away the list of refused recipients. This module talks to the server with smtplib
directly so that every wait is bounded (`MAIL_TIMEOUT`), TLS is verified (optionally against
`MAIL_CA_FILE`), and each outcome (the 250 reply, partial refusals, the failing reply) reaches
the outbox row.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
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
    """Delivery did not happen. `transient` says whether trying again later can help."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


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
        return DeliveryError(
            f"TLS certificate not trusted ({exc.verify_message}); set MAIL_CA_FILE to trust a "
            "private CA",
            transient=False,
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):  # how smtplib reports a read timeout
            return DeliveryError("timed out waiting for the SMTP server", transient=True)
        return DeliveryError(f"connection lost: {str(exc) or 'server hung up'}", transient=True)
    if isinstance(exc, TimeoutError | socket.timeout):
        return DeliveryError("timed out waiting for the SMTP server", transient=True)
    if isinstance(exc, OSError):
        return DeliveryError(f"connection failed: {exc}", transient=True)
    return DeliveryError(f"unexpected error: {type(exc).__name__}: {exc}", transient=True)


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
                self._command(smtp).login(s.username, s.password)
        except (smtplib.SMTPException, ssl.SSLError) as exc:
            raise classify(exc) from exc
        except OSError as exc:  # refused, unreachable, name not resolved, timed out
            raise DeliveryError(
                f"connection to {s.server}:{s.port} failed: {exc}", transient=True
            ) from exc
        self._smtp = smtp
        self._sent_on_connection = 0
        return smtp

    def _transaction(
        self, smtp: smtplib.SMTP, envelope_from: str, recipients: list[str], raw: bytes
    ) -> DeliveryReport:
        self._command(smtp).ehlo_or_helo_if_needed()
        options = []
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
        code, message = self._command(smtp).data(raw)
        if code != 250:
            self._reset(smtp)
            raise smtplib.SMTPDataError(code, message)
        self._sent_on_connection += 1
        return DeliveryReport(
            reply=_reply(code, message),
            refused={addr: _reply(c, m) for addr, (c, m) in refused.items()},
        )

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
