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

It is devtools/smtp_server.py's server, which advertises 8BITMIME and SMTPUTF8.

Run::

    python -m devtools.smtp_catcher --host 127.0.0.1 --port 1025 --maildir instance/mail

Options default to the environment variables DEV_SMTP_HOST, DEV_SMTP_PORT and
DEV_SMTP_MAILDIR. SIGINT or SIGTERM stops it cleanly (exit status 0).

From Python, ``SmtpCatcher`` runs on a background thread::

    with SmtpCatcher(tmp_path) as catcher:  # port 0 picks a free port
        smtplib.SMTP(catcher.host, catcher.port).send_message(msg)
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

from devtools.smtp_server import ReceivedMessage, SMTPServer

log = logging.getLogger("devtools.smtp_catcher")


class SmtpCatcher(SMTPServer):
    """The SMTP server, keeping each message as an .eml file in `maildir` (not in memory)."""

    def __init__(self, maildir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port, hostname="flasky-smtp-catcher")
        self.maildir = Path(maildir)
        self.maildir.mkdir(parents=True, exist_ok=True)
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._stamp_lock = threading.Lock()

    def start(self) -> None:
        super().start()
        log.info(
            "listening on %s:%s, saving messages to %s (development only: no TLS, no AUTH)",
            self.host,
            self.port,
            self.maildir.resolve(),
        )

    def keep(self, message: ReceivedMessage) -> None:
        path = self.save(message.raw)
        log.info(
            "from=%s to=%s subject=%r file=%s",
            message.mail_from,
            ",".join(message.rcpt_tos),
            _subject(message.raw),
            path.name,
        )

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

    def _next_name(self) -> str:
        # Strictly increasing timestamps keep names in arrival order even when
        # the clock is coarse or two messages land in the same microsecond.
        with self._stamp_lock:
            now = datetime.now(UTC)
            if now <= self._last_stamp:
                now = self._last_stamp + timedelta(microseconds=1)
            self._last_stamp = now
        return f"{now:%Y%m%dT%H%M%S.%f}-{secrets.token_hex(4)}.eml"


def _subject(raw: bytes) -> str:
    """The decoded Subject header of ``raw``, or '' when there is none."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        return str(headers.get("Subject", ""))
    except Exception:  # a malformed header must not lose the message
        return "<unparseable subject>"


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
        SmtpCatcher(args.maildir, args.host, args.port).serve_until_signal()
    except OSError as exc:  # typically: address already in use
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    log.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
