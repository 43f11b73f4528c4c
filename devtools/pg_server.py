"""A throwaway PostgreSQL server of our own, for the tests on a machine that has none (standard
library only: dev.py starts it before running pytest)."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from devtools.ports import free_port
from devtools.processes import Process, as_user, running
from devtools.waiting import wait_until

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SSL_REQUEST = struct.pack("!II", 8, 80877103)
# postgres refuses to run as root: from root, the server runs as this user (every Linux has it).
UNPRIVILEGED_USER = "nobody"


def postgres_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send the SSLRequest that opens a libpq connection: a PostgreSQL server answers one byte,
    S or N (or an E from a server too old for it), before any authentication."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(SSL_REQUEST)
            reply = sock.recv(1)
    except OSError:
        return False
    return reply in (b"S", b"N", b"E")


def url_address(url: str) -> tuple[str, int]:
    """(host, port) of a postgresql:// URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


class PostgresServer:
    """PostgreSQL from the programs in `bin_dir` on 127.0.0.1: a cluster made by initdb in a
    temporary folder (user postgres, trust authentication, no fsync: nothing in it is worth
    keeping), the server on a free port with no Unix socket. stop() kills it and removes the
    folder."""

    def __init__(self, bin_dir: Path, port: int | None = None) -> None:
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        self.workdir: Path | None = None
        self.process: Process | None = None

    @property
    def url(self) -> str:
        """The admin URL the tests take (FLASKY_TEST_POSTGRES_URL)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def version(self) -> str:
        """The server's version, e.g. '16.2'."""
        output = subprocess.run(
            [str(self.bin_dir / "postgres"), "--version"], capture_output=True, text=True
        ).stdout
        return output.split()[-1] if output else "?"

    def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="flasky-postgres-"))
        data = self.workdir / "data"
        if self.user is not None:
            entry = as_user(self.user)
            os.chown(self.workdir, entry["user"], entry["group"])
        self._initdb(data)
        args = [str(self.bin_dir / "postgres"), "-D", str(data), "-p", str(self.port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            "unix_socket_directories=",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
        ):
            args += ["-c", setting]
        self.process = process = Process("postgres", args, os.environ, self.workdir, user=self.user)
        wait_until(
            lambda: running(process) and postgres_answers("127.0.0.1", self.port),
            30,
            f"PostgreSQL on {self.port}",
        )

    def _initdb(self, data: Path) -> None:
        initdb = [str(self.bin_dir / "initdb"), "-D", str(data), "-U", "postgres"]
        initdb += ["--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"]
        result = subprocess.run(
            initdb,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            **({} if self.user is None else as_user(self.user)),
        )
        if result.returncode != 0:
            hint = (
                f" (it runs as the user {self.user}, which must be able to reach {self.bin_dir})"
                if self.user
                else ""
            )
            raise RuntimeError(f"initdb failed{hint}:\n{result.stdout}{result.stderr}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
