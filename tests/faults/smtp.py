"""An SMTP test server that can also lose its reply after accepting a message.

tests/smtp_server.py's `hang_up_at("eom")` drops the connection *before* storing the message.
The case the delivery promise is about is the other one: the server took the message (a real
one would deliver it) and the connection died before its "250" reached the client, which must
then assume a failure and send again.
"""

from __future__ import annotations

import asyncio
import threading

from aiosmtpd.smtp import Envelope, Session

from tests.smtp_server import ReceivedMessage, SMTPTestServer, _Connection, _Handler


class LossyReplyServer(SMTPTestServer):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._handler = _StoreThenDropHandler(self)
        self._drops_left = 0
        self._drops_lock = threading.Lock()
        self.dropped_replies = 0

    def drop_reply_after_storing(self, times: int) -> None:
        """For the next `times` messages: store the message, then hang up without replying."""
        with self._drops_lock:
            self._drops_left += times

    def take_drop(self) -> bool:
        with self._drops_lock:
            if self._drops_left == 0:
                return False
            self._drops_left -= 1
            self.dropped_replies += 1
            return True


class _StoreThenDropHandler(_Handler):
    server: LossyReplyServer

    async def handle_DATA(
        self, connection: _Connection, session: Session, envelope: Envelope
    ) -> str:
        if not self.server.take_drop():
            return await super().handle_DATA(connection, session, envelope)
        assert envelope.mail_from is not None and envelope.original_content is not None
        self.server._store(
            ReceivedMessage(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        connection.drop()
        await asyncio.get_running_loop().create_future()  # cancelled with the connection
        raise AssertionError("unreachable")
