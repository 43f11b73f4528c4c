"""A redis-server of our own (standard library only: dev.py starts one before .venv exists)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from devtools.embedded import REDIS, find_program
from devtools.environment import ROOT
from devtools.ports import free_port
from devtools.processes import Process, running
from devtools.waiting import wait_until

if TYPE_CHECKING:
    import redis


def redis_answers(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Send a RESP PING; any RESP reply (+PONG, or -NOAUTH) means Redis is there."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply[:1] in (b"+", b"-")


class RedisServer:
    """redis-server on 127.0.0.1 without persistence, which its owner may stop and start again
    on the same port: stop() is a SIGKILL, an outage that loses every message it held.

    Its output goes to `workdir/redis.log`, or with console=True to our stdout (the dev runner).
    The program is `binary`, by default the redis-server on the PATH or else the embedded one
    in .venv (devtools/embedded.py).
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        console: bool = False,
        binary: str | None = None,
    ) -> None:
        binary = binary or find_program("redis-server", REDIS, ROOT / ".venv")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed (apt-get install redis-server,"
                " or python3 dev.py test installs the embedded one)"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.console = console
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        log_dir = None if self.console else self.workdir
        self.process = process = Process("redis", args, os.environ, log_dir)
        wait_until(
            lambda: running(process) and redis_answers(self.port),
            10,
            f"redis-server on {self.port}",
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def client(self) -> redis.Redis:
        import redis  # here: dev.py imports this module with no redis package installed

        return redis.Redis.from_url(self.url)

    def version(self) -> str:
        return str(self.client().info("server")["redis_version"])
