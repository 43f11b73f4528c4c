"""A development SMTP server that keeps every message it receives.

DEVELOPMENT ONLY: it accepts mail from anyone, offers no AUTH and no TLS, and
delivers nothing. Point the app's MAIL_SERVER/MAIL_PORT at it to see exactly
what would have been sent. Never expose it beyond the loopback interface.

Each message is saved as one ``.eml`` file in the mail folder, holding the
exact bytes of the DATA section (after SMTP dot-unstuffing). File names start
with a UTC timestamp, ``20261126T112233.123456-1a2b3c4d.eml``, so they sort by
arrival; each file is written under a temporary name and then renamed, so a
reader never sees half a message. One log line per message records the time,
sender, recipients, subject and file name (never the body).

The server advertises 8BITMIME and SMTPUTF8.

Run::

    python -m devtools.smtp_catcher --host 127.0.0.1 --port 1025 --maildir instance/mail

Options default to the environment variables DEV_SMTP_HOST, DEV_SMTP_PORT and
DEV_SMTP_MAILDIR. SIGINT or SIGTERM stops it cleanly (exit status 0).

From Python, ``run(host, port, maildir)`` blocks until a signal arrives, and
``SmtpCatcher`` runs the server on a background thread::

    with SmtpCatcher(tmp_path) as catcher:  # port 0 picks a free port
        smtplib.SMTP(catcher.host, catcher.port).send_message(msg)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("devtools.smtp_catcher")

SERVER_HOSTNAME = "flasky-smtp-catcher"


class MaildirHandler:
    """aiosmtpd handler: saves each message to ``maildir`` as an .eml file."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = Path(maildir)
        self.maildir.mkdir(parents=True, exist_ok=True)
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def _next_name(self) -> str:
        # Strictly increasing timestamps keep names in arrival order even when
        # the clock is coarse or two messages land in the same microsecond.
        with self._lock:
            now = datetime.now(UTC)
            if now <= self._last_stamp:
                now = self._last_stamp + timedelta(microseconds=1)
            self._last_stamp = now
        return f"{now:%Y%m%dT%H%M%S.%f}-{secrets.token_hex(4)}.eml"

    def save(self, raw: bytes) -> Path:
        """Write ``raw`` atomically to a new .eml file and return its path."""
        name = self._next_name()
        final = self.maildir / name
        tmp = self.maildir / f".{name}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd hook name)
        raw = envelope.original_content or b""
        try:
            path = self.save(raw)
        except OSError:
            log.exception("could not save message from %s", envelope.mail_from)
            return "451 Requested action aborted: local error in processing"
        log.info(
            "from=%s to=%s subject=%r file=%s",
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
            _subject(raw),
            path.name,
        )
        return "250 Message accepted for delivery"


def _subject(raw: bytes) -> str:
    """The decoded Subject header of ``raw``, or '' when there is none."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        return str(headers.get("Subject", ""))
    except Exception:  # a malformed header must not lose the message
        return "<unparseable subject>"


async def start_server(handler: MaildirHandler, host: str, port: int) -> asyncio.Server:
    """Start listening on host:port in the running event loop."""
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        # No tls_context and the default auth_require_tls=True: neither
        # STARTTLS nor AUTH is offered. SMTPUTF8 is opt-in; 8BITMIME is on
        # because decode_data is False.
        return SMTP(handler, hostname=SERVER_HOSTNAME, enable_SMTPUTF8=True, loop=loop)

    return await loop.create_server(factory, host=host, port=port)


class SmtpCatcher:
    """The catcher on a background thread, as a context manager (for tests)."""

    def __init__(self, maildir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = MaildirHandler(maildir)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def maildir(self) -> Path:
        return self.handler.maildir

    def start(self) -> SmtpCatcher:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            start_server(self.handler, self.host, self.port)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="smtp-catcher", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()
        self._loop = self._server = self._thread = None

    def __enter__(self) -> SmtpCatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def _serve_until_signal(host: str, port: int, maildir: Path) -> None:
    handler = MaildirHandler(maildir)
    server = await start_server(handler, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()
    log.info(
        "listening on %s:%s, saving messages to %s (development only: no TLS, no AUTH)",
        bound[0],
        bound[1],
        handler.maildir.resolve(),
    )
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        server.close()
        await server.wait_closed()


def run(host: str, port: int, maildir: Path) -> None:
    """Serve on host:port, saving into maildir, until SIGINT or SIGTERM."""
    asyncio.run(_serve_until_signal(host, port, Path(maildir)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m devtools.smtp_catcher",
        description="Development SMTP server that saves every message as an .eml file.",
    )
    parser.add_argument("--host", default=env.get("DEV_SMTP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("DEV_SMTP_PORT", "1025")))
    parser.add_argument(
        "--maildir", type=Path, default=Path(env.get("DEV_SMTP_MAILDIR", "instance/mail"))
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd logs every connection and command at INFO; keep only problems.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        run(args.host, args.port, args.maildir)
    except OSError as exc:  # typically: address already in use
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
