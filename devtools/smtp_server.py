"""flasky's one SMTP server, built on aiosmtpd: the dev catcher, the tests' server that can be
told to misbehave, and the benchmarks' sink.

Without scripting it accepts every message and keeps it in `messages`; the catcher
(devtools/smtp_catcher.py) and the sink (bench/sink.py) override `keep` to write an .eml file
or to count. Typical use in a test::

    with SMTPServer() as smtp:
        smtp.reply_at("rcpt", "451 4.7.1 Try again later")
        ...  # point the app at smtp.host / smtp.port and send something
        [message] = smtp.wait_for_messages(1)

How it works: aiosmtpd speaks SMTP; we run it on an asyncio event loop in a
background thread (`start`/`stop`, or `serve_until_signal` in a process of its own).
Every client connection gets a `_Connection` (aiosmtpd's SMTP protocol, subclassed)
and all connections share one `_Handler` (aiosmtpd's hook object). At each stage of
the SMTP conversation they ask the server for the next scripted fault (`reply_at`,
`hang_up_at`, `hang_at`, `drop_reply_after_storing`) and, if there is none, behave
like a normal mail server that accepts everything.

Stages, in the order a client reaches them:

    greeting  the "220" banner sent when the client connects
    ehlo      the reply to EHLO (or HELO, which smtplib falls back to)
    mail      the reply to MAIL FROM
    rcpt      the reply to each RCPT TO
    data      the reply to the DATA command (normally "354 go ahead")
    eom       the reply to the final "." after the message content
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
import signal
import ssl
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal, cast

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

log = logging.getLogger(__name__)

STAGES = ("greeting", "ehlo", "mail", "rcpt", "data", "eom")

# A one-line SMTP failure reply: 4xx (temporary) or 5xx (permanent), optional text.
_FAILURE_REPLY = re.compile(r"[45]\d\d( .*)?")

# How long start()/stop() wait for the loop thread before giving up.
_THREAD_TIMEOUT = 5.0

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID of a raw message, read from its header block only (no parsing: fast)."""
    match = _MESSAGE_ID.search(raw.split(b"\r\n\r\n", 1)[0])
    return match.group(1).decode("ascii", "replace") if match else None


@dataclass
class ReceivedMessage:
    """A message the server accepted (it answered 250 to the final ".")."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes  # the DATA section exactly as received (dot-stuffing removed)

    def parsed(self) -> EmailMessage:
        return cast(EmailMessage, email.message_from_bytes(self.raw, policy=email.policy.default))

    @property
    def message_id(self) -> str | None:
        """The Message-ID header, angle brackets included, or None if there is none."""
        value = self.parsed()["Message-ID"]
        return None if value is None else str(value).strip()


@dataclass
class _Fault:
    action: Literal["reply", "hang_up", "hang", "keep_then_hang_up"]
    reply: str  # only for action == "reply"
    remaining: int  # how many more times this fault fires


class SMTPServer:
    """An SMTP server on a background thread, with scriptable faults.

    Without any scripting it accepts every message and stores it in `messages`.
    Scripted faults for a stage are consumed in the order they were added; each
    fires for the next `times` times a client reaches that stage.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        starttls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        implicit_tls_context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        hostname: str = "localhost",
        backlog: int = 100,
        size_limit: int | None = None,
    ) -> None:
        """
        port=0 picks a free port at the first start(); restarts reuse that port.
        host should be an IP address (a name may resolve to several, each on its own port).
        starttls_context offers STARTTLS; require_starttls refuses mail without it.
        implicit_tls_context makes it an SMTPS server (TLS from the first byte).
        auth=(username, password) requires AUTH PLAIN/LOGIN before MAIL; over STARTTLS,
        AUTH is only offered after the TLS upgrade.
        hostname is the name it greets with (the default, socket.getfqdn(), can be slow);
        backlog, how many connections may wait to be accepted.
        size_limit, the SIZE it advertises in EHLO and enforces (None: aiosmtpd's 32 MiB).
        """
        if require_starttls and starttls_context is None:
            raise ValueError("require_starttls needs a starttls_context")
        if starttls_context is not None and implicit_tls_context is not None:
            raise ValueError("use either STARTTLS or implicit TLS, not both")
        self.host = host
        self.port = port
        self.starttls_context = starttls_context
        self.require_starttls = require_starttls
        self.implicit_tls_context = implicit_tls_context
        self.auth = auth
        self.hostname = hostname
        self.backlog = backlog
        self.size_limit = size_limit
        self.auth_attempts = 0  # AUTH commands answered, accepted or not
        self.delay_per_message: float = 0.0
        self.messages: list[ReceivedMessage] = []
        self.dropped_replies = 0

        # _lock guards messages, faults, refusals and the connection count, which the
        # test thread and the loop thread both touch; waiters are woken on new messages.
        self._lock = threading.Condition()
        self._faults: dict[str, deque[_Fault]] = {stage: deque() for stage in STAGES}
        self._refusals: dict[str, str] = {}
        self._connections = 0

        self._handler = _Handler(self)
        # Set while running. _open (the live connections) is only used in the loop thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: asyncio.Server | None = None
        self._open: set[_Connection] = set()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._loop is not None:
            raise RuntimeError("SMTPServer is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="SMTPServer", daemon=True)
        thread.start()
        try:
            future = asyncio.run_coroutine_threadsafe(self._listen(), loop)
            self._listener = future.result(_THREAD_TIMEOUT)
        except BaseException:
            _stop_loop(loop, thread)
            raise
        self._loop, self._thread = loop, thread

    def stop(self) -> None:
        """Stop listening and drop every open connection. Safe to call when stopped."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_THREAD_TIMEOUT)
        finally:
            _stop_loop(loop, thread)

    def serve_until_signal(
        self, signals: Iterable[signal.Signals] = (signal.SIGINT, signal.SIGTERM)
    ) -> None:
        """Serve until one of `signals` arrives (in a process of its own: the catcher, the sink).

        The signals are blocked before the loop thread starts, so that they reach only the
        sigwait here and not the thread (which would die of SIGTERM's default action).
        """
        wanted = set(signals)
        signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
        self.start()
        try:
            signal.sigwait(wanted)
        finally:
            self.stop()

    def __enter__(self) -> SMTPServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _listen(self) -> asyncio.Server:
        listener = await asyncio.get_running_loop().create_server(
            self._accept, self.host, self.port, ssl=self.implicit_tls_context, backlog=self.backlog
        )
        self.port = listener.sockets[0].getsockname()[1]
        return listener

    async def _shutdown(self) -> None:
        assert self._listener is not None
        self._listener.close()
        for connection in list(self._open):
            connection.drop()
        # Wake every handler still waiting (hang_at, delay_per_message) so it ends cleanly.
        this_task = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not this_task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._listener.wait_closed()
        self._listener = None

    def _accept(self) -> _Connection:
        """Protocol factory: asyncio calls it once per accepted TCP connection."""
        with self._lock:
            self._connections += 1
        connection = _Connection(self)
        self._open.add(connection)
        return connection

    # ------------------------------------------------------------------ messages

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted (since creation or reset())."""
        return self._connections

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Wait until at least `count` messages were accepted; return all of them."""
        with self._lock:
            if self._lock.wait_for(lambda: len(self.messages) >= count, timeout):
                return list(self.messages)
            received = "".join(
                f"\n  - from {m.mail_from!r} to {m.rcpt_tos!r}, Message-ID {m.message_id}"
                for m in self.messages
            )
            raise AssertionError(
                f"SMTP server {self.host}:{self.port}: expected {count} message(s) "
                f"within {timeout}s, got {len(self.messages)}{received} "
                f"({self._connections} connection(s) accepted)"
            )

    def reset(self) -> None:
        """Back to a fresh server: no messages, faults, refusals, delay or counts."""
        with self._lock:
            self.messages.clear()
            for faults in self._faults.values():
                faults.clear()
            self._refusals.clear()
            self.delay_per_message = 0.0
            self.dropped_replies = 0
            self.auth_attempts = 0
            self._connections = 0

    # ------------------------------------------------ hooks of the catcher and the sink

    def keep(self, message: ReceivedMessage) -> None:
        """Keep a message the server accepted: in `messages` (the catcher and the sink override
        this to write an .eml file or to count). An OSError makes the reply a 451."""
        with self._lock:
            self.messages.append(message)
            self._lock.notify_all()

    def _receive(self, envelope: Envelope) -> None:
        assert envelope.mail_from is not None and envelope.original_content is not None
        self.keep(
            ReceivedMessage(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )

    def mail_started(self) -> None:
        """Called at each accepted MAIL FROM (the sink times a batch from the first one)."""

    def delay(self) -> float:
        """Seconds to wait before answering a message's final "." (`delay_per_message`)."""
        return self.delay_per_message

    # -------------------------------------------------------------------- faults

    def reply_at(self, stage: str, reply: str, times: int = 1) -> None:
        """Answer `stage` with a 4xx/5xx `reply` such as "451 4.7.1 Try again later".

        At "greeting" the server then closes the connection (smtplib raises
        SMTPConnectError). A 421 reply closes the connection at any stage, as real
        servers do. Other replies leave the connection open.
        """
        _check_reply(reply)
        self._add_fault(stage, _Fault("reply", reply, times))

    def hang_up_at(self, stage: str, times: int = 1) -> None:
        """Close the TCP connection at `stage` without replying.

        At "eom" the whole message has been received but is not stored: the client
        cannot tell whether it was delivered.
        """
        self._add_fault(stage, _Fault("hang_up", "", times))

    def hang_at(self, stage: str, times: int = 1) -> None:
        """Never reply at `stage` (until the client leaves or stop()): for timeout tests."""
        self._add_fault(stage, _Fault("hang", "", times))

    def drop_reply_after_storing(self, times: int) -> None:
        """For the next `times` messages: keep the message, then hang up without replying.

        Unlike hang_up_at("eom"), the server took the message (a real one would deliver it);
        the client never hears so, must assume a failure and send again. Counted in
        `dropped_replies`.
        """
        self._add_fault("eom", _Fault("keep_then_hang_up", "", times))

    def refuse_recipient(self, address: str, reply: str) -> None:
        """Always answer RCPT TO:<address> with `reply` (case-insensitive match)."""
        _check_reply(reply)
        with self._lock:
            self._refusals[address.lower()] = reply

    def _add_fault(self, stage: str, fault: _Fault) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults[stage].append(fault)

    def _next_fault(self, stage: str) -> _Fault | None:
        with self._lock:
            faults = self._faults[stage]
            if not faults:
                return None
            fault = faults[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                faults.popleft()
            return fault

    def _refusal_for(self, address: str) -> str | None:
        with self._lock:
            return self._refusals.get(address.lower())

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd authenticator: accept only self.auth; a failure makes aiosmtpd send 535."""
        assert self.auth is not None
        username, password = self.auth
        with self._lock:
            self.auth_attempts += 1
        valid = isinstance(data, LoginPassword) and (data.login, data.password) == (
            username.encode(),
            password.encode(),
        )
        return AuthResult(success=valid, handled=False)


class _Connection(SMTP):
    """One client connection: aiosmtpd's SMTP protocol plus the stages it has no hooks for.

    aiosmtpd calls handler hooks for MAIL, RCPT and end-of-message (see _Handler);
    the greeting, EHLO/HELO and the DATA command are intercepted here instead.
    """

    def __init__(self, server: SMTPServer) -> None:
        auth_kwargs: dict[str, Any] = {}
        if server.auth is not None:
            auth_kwargs = {"auth_required": True, "authenticator": server._authenticate}
        super().__init__(
            server._handler,
            hostname=server.hostname,
            enable_SMTPUTF8=True,
            decode_data=False,  # keep the content as raw bytes (8BITMIME, SMTPUTF8)
            tls_context=server.starttls_context,
            require_starttls=server.require_starttls,
            auth_require_tls=True,
            # asyncio calls the protocol factory in the loop thread. Passing the loop
            # stops aiosmtpd from looking it up itself (which fiddles with the global,
            # not thread-safe, warning filters).
            loop=asyncio.get_running_loop(),
            **auth_kwargs,
            **({} if server.size_limit is None else {"data_size_limit": server.size_limit}),
        )
        # aiosmtpd only knows about STARTTLS: with auth_require_tls=True it would refuse
        # AUTH on an implicit-TLS connection. So AUTH needs TLS only when STARTTLS is on
        # offer; with no TLS configured at all, plaintext AUTH is what the test asked for,
        # and without `auth` none is offered (the catcher's promise).
        # (Passing auth_require_tls=False to __init__ instead emits a warning per connection.)
        self._auth_require_tls = server.auth is None or server.starttls_context is not None
        self.server = server

    def drop(self) -> None:
        """Close the TCP connection now: no TLS goodbye, unsent replies are discarded."""
        if self.transport is not None:
            self.transport.abort()  # on a TLS transport this aborts the TCP one beneath

    def connection_lost(self, error: Exception | None) -> None:
        self.server._open.discard(self)
        super().connection_lost(error)

    async def scripted_reply(self, stage: str) -> str | None:
        """Play the next scripted fault for `stage`, if any.

        Returns a reply to send instead of the normal one, or None when nothing is
        scripted. Otherwise it never returns: it waits until the connection is gone,
        and aiosmtpd cancels this (the connection's) task on connection loss, as
        stop() does. That is how hang_at hangs and how hang-ups stop processing.
        """
        fault = self.server._next_fault(stage)
        if fault is None:
            return None
        if fault.action == "reply":
            if stage != "greeting" and not fault.reply.startswith("421"):
                return fault.reply
            await self.push(fault.reply)
            assert self.transport is not None
            self.transport.close()  # close() rather than drop(): the reply must get out
        elif fault.action == "hang_up":
            self.drop()
        elif fault.action == "keep_then_hang_up":
            assert self.envelope is not None
            self.server._receive(self.envelope)
            with self.server._lock:
                self.server.dropped_replies += 1
            self.drop()
        await asyncio.get_running_loop().create_future()  # never set; we get cancelled
        raise AssertionError("unreachable")

    async def _handle_client(self) -> None:
        # aiosmtpd's per-connection task; it starts by sending the greeting.
        await self.scripted_reply("greeting")
        await super()._handle_client()

    async def smtp_EHLO(self, hostname: str) -> None:
        await self._scripted_or_normal("ehlo", bool(hostname), super().smtp_EHLO, hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        await self._scripted_or_normal("ehlo", bool(hostname), super().smtp_HELO, hostname)

    async def smtp_DATA(self, arg: str) -> None:
        # Only once aiosmtpd would accept DATA: a recipient was accepted (so EHLO, AUTH
        # and MAIL succeeded too) and the command has no argument.
        ready = bool(self.envelope is not None and self.envelope.rcpt_tos and not arg)
        await self._scripted_or_normal("data", ready, super().smtp_DATA, arg)

    async def _scripted_or_normal(
        self, stage: str, valid: bool, normal: Callable[[str], Awaitable[None]], arg: str
    ) -> None:
        """Answer a command aiosmtpd has no hook for: the scripted reply of `stage` (only for a
        `valid` command, so that faults are not used up by errors), else aiosmtpd's."""
        reply = await self.scripted_reply(stage) if valid else None
        if reply:
            await self.push(reply)
        else:
            await normal(arg)


class _Handler:
    """aiosmtpd handler hooks, called after aiosmtpd has validated the command.

    Each hook returns the reply aiosmtpd sends. When accepting, the MAIL and RCPT
    hooks must fill in the envelope themselves (aiosmtpd's documented contract).
    """

    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_MAIL(
        self,
        connection: _Connection,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        reply = await connection.scripted_reply("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self.server.mail_started()
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        connection: _Connection,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = await connection.scripted_reply("rcpt") or self.server._refusal_for(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(
        self, connection: _Connection, session: Session, envelope: Envelope
    ) -> str:
        """The final "." arrived; the content is in envelope.original_content."""
        reply = await connection.scripted_reply("eom")
        if reply:
            return reply
        # Keep only after the delay: a client that gives up waiting hangs up, which
        # cancels this task, so (like hang_up_at("eom")) nothing is kept.
        delay = self.server.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            self.server._receive(envelope)
        except OSError:
            log.exception("could not keep the message from %s", envelope.mail_from)
            return "451 4.3.0 Requested action aborted: local error in processing"
        return "250 2.0.0 OK: queued"


def _check_reply(reply: str) -> None:
    if not _FAILURE_REPLY.fullmatch(reply):
        raise ValueError(f"expected a 4xx or 5xx reply like '451 4.7.1 Try later', got {reply!r}")


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(_THREAD_TIMEOUT)
    if not thread.is_alive():
        loop.close()
