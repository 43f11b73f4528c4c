"""Local TCP ports: a free one to listen on, and whether something listens on one."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (the caller's server may still lose it to a race)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
