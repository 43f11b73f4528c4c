"""The benchmark's SMTP sink: devtools' SMTP server, in a process of its own, counting messages.

It runs in its own process so that its CPU does not share a GIL with the runner's HTTP clients
or the single-process send loop. The runner reads its counters through shared memory:

- `accepted`: messages answered with 250 after the final "." (the delay is applied before it);
- `unique_ids`: distinct Message-ID headers among them (a duplicate delivery shows as a gap);
- `first_mail_at`: monotonic time of the first MAIL FROM since the runner last cleared it, i.e.
  when delivery of a batch started (worker start-up time excluded);
- `last_accepted_at`: monotonic time of the latest 250 (Linux's monotonic clock is shared by
  all processes, so the runner can subtract the two).

It also appends one line per accepted message, `<monotonic time of its 250> <Message-ID>`, to
an arrivals log (`arrivals`): the runner times single emails by it (commit → 250) and checks a
drain's Message-IDs against the rows marked sent (nothing lost).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import TextIO

from devtools.ports import port_answers
from devtools.smtp_server import ReceivedMessage, SMTPServer, message_id_of
from devtools.waiting import wait_until


class _Counters:
    """Shared values written by the sink process and read (or reset) by the runner."""

    def __init__(self, ctx: multiprocessing.context.SpawnContext) -> None:
        self.accepted: Synchronized[int] = ctx.Value(ctypes.c_longlong, 0)
        self.unique_ids: Synchronized[int] = ctx.Value(ctypes.c_longlong, 0)
        self.first_mail_at: Synchronized[float] = ctx.Value(ctypes.c_double, 0.0)
        self.last_accepted_at: Synchronized[float] = ctx.Value(ctypes.c_double, 0.0)
        self.delay: Synchronized[float] = ctx.Value(ctypes.c_double, 0.0)


class _CountingServer(SMTPServer):
    """The SMTP server, counting messages into the shared counters instead of keeping them."""

    def __init__(self, port: int, counters: _Counters, arrivals: TextIO) -> None:
        super().__init__(port=port, hostname="bench-sink", backlog=512)
        self.counters = counters
        self.seen_ids: set[str] = set()
        self.arrivals = arrivals

    def mail_started(self) -> None:
        if self.counters.first_mail_at.value == 0.0:
            self.counters.first_mail_at.value = time.monotonic()

    def delay(self) -> float:
        return self.counters.delay.value

    def keep(self, message: ReceivedMessage) -> None:
        message_id = message_id_of(message.raw)
        if message_id:
            self.seen_ids.add(message_id)
        now = time.monotonic()
        self.arrivals.write(f"{now:.6f} {message_id or '-'}\n")
        counters = self.counters
        counters.unique_ids.value = len(self.seen_ids)
        counters.last_accepted_at.value = now
        with counters.accepted.get_lock():
            counters.accepted.value += 1


def _serve(port: int, counters: _Counters, arrivals: Path) -> None:
    """The sink process: serve SMTP on `port` until terminated, logging arrivals to
    `arrivals` (line-buffered: the runner reads each line as soon as its 250 is sent)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides when the sink stops
    with arrivals.open("a", buffering=1) as log:
        _CountingServer(port, counters, log).serve_until_signal([signal.SIGTERM])


class Sink:
    """Start, read and stop the sink process."""

    def __init__(self, port: int, arrivals: Path) -> None:
        self.port = port
        self.arrivals_path = arrivals
        ctx = multiprocessing.get_context("spawn")
        self._counters = _Counters(ctx)
        self._process = ctx.Process(
            target=_serve, args=(port, self._counters, arrivals), daemon=True
        )

    def start(self) -> None:
        self._process.start()
        wait_until(lambda: port_answers(self.port), 20, f"the SMTP sink on port {self.port}")

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)

    @property
    def accepted(self) -> int:
        return self._counters.accepted.value

    @property
    def unique_ids(self) -> int:
        return self._counters.unique_ids.value

    def set_delay(self, seconds: float) -> None:
        """Wait this long before answering 250 to each message's final "."."""
        self._counters.delay.value = seconds

    def start_batch(self) -> int:
        """Clear the batch start time; return the count to wait from."""
        self._counters.first_mail_at.value = 0.0
        return self.accepted

    def arrivals_mark(self) -> int:
        """Where the arrivals log ends now: pass it to `arrivals` to read what came after."""
        return self.arrivals_path.stat().st_size if self.arrivals_path.exists() else 0

    def arrivals(self, mark: int = 0) -> dict[str, float]:
        """Message-ID -> monotonic time of its first 250, for the messages accepted since
        `mark` (a line still being written is left for the next read)."""
        if not self.arrivals_path.exists():
            return {}
        with self.arrivals_path.open("rb") as log:
            log.seek(mark)
            data = log.read()
        found: dict[str, float] = {}
        for line in data.decode("ascii", "replace").splitlines(keepends=True):
            if line.endswith("\n"):
                at, _, message_id = line.rstrip("\n").partition(" ")
                found.setdefault(message_id, float(at))
        return found

    def wait_for(self, count: int, timeout: float) -> None:
        """Wait until `count` messages in all have been accepted."""
        wait_until(
            lambda: self.accepted >= count, timeout, f"{count} messages at the sink", interval=0.01
        )

    @property
    def last_accepted_at(self) -> float:
        """Monotonic time of the latest 250."""
        return self._counters.last_accepted_at.value

    def batch_seconds(self) -> float:
        """From the first MAIL FROM of this batch to the latest 250."""
        counters = self._counters
        return counters.last_accepted_at.value - counters.first_mail_at.value
