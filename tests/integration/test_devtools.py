"""Tests for the development tools: the SMTP catcher and the dev.py runner.

Everything here runs for real: the catcher and dev.py are started as
subprocesses, mail goes over SMTP with smtplib, the web app is driven over HTTP.
Each test kills every process it started (and everything those started) when
it ends, pass or fail.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import email.utils
import os
import re
import secrets
import shutil
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from http.cookiejar import CookieJar
from pathlib import Path
from typing import TypeVar
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener, urlopen

import pytest

from devtools.environment import ROOT
from devtools.ports import free_port
from devtools.ports import port_answers as port_open
from devtools.redis_server import redis_answers
from devtools.smtp_catcher import SmtpCatcher

EML_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}-[0-9a-f]{8}\.eml$")
T = TypeVar("T")


# --- processes, via /proc (no psutil) ----------------------------------------


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, or None when there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[2])


def all_processes() -> dict[int, tuple[str, int, int]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    return table


def descendants(pid: int) -> set[int]:
    """Every live process below pid in the process tree."""
    children: dict[int, list[int]] = {}
    for child, (_state, ppid, _pgid) in all_processes().items():
        children.setdefault(ppid, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has already exited


class Processes:
    """Starts processes in their own groups; kills them and their offspring at teardown."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.seen: set[int] = set()

    def start(
        self, cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        self.started.append(proc)
        return proc

    def remember_offspring(self) -> set[int]:
        """Record the current descendants of every started process, and return them."""
        current: set[int] = set()
        for proc in self.started:
            current |= descendants(proc.pid)
        self.seen |= current
        return current

    def kill_all(self) -> None:
        self.remember_offspring()
        pids = self.seen | {p.pid for p in self.started}
        groups = {stat[2] for pid in pids if (stat := proc_stat(pid))} - {os.getpgrp()}
        for group in groups:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.kill_all()


# --- network helpers -----------------------------------------------------------


def free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    tick: Callable[[], object] = lambda: None,
) -> T:
    """Poll check() until it returns something truthy; fail early if proc dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick()
        result = check()
        if result:
            return result
        if proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}) before {what}:\n{tail(log)}")
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{tail(log)}")


def tail(log: Path, lines: int = 80) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- messages ------------------------------------------------------------------


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def message_text(message: Message) -> str:
    """Subject plus every decoded text part."""
    parts = [str(message.get("Subject", ""))]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def emls(maildir: Path) -> list[Path]:
    return sorted(maildir.glob("*.eml")) if maildir.is_dir() else []


def catcher_messages() -> tuple[EmailMessage, EmailMessage]:
    plain = EmailMessage()
    plain["From"] = "sender@example.com"
    plain["To"] = "first@example.com"
    plain["Subject"] = "Plain subject"
    plain["Message-ID"] = email.utils.make_msgid(domain="example.com")
    plain.set_content("A plain body.\n.A line that starts with a dot.\n")

    utf8 = EmailMessage()
    utf8["From"] = "sender@example.com"
    utf8["To"] = "second@example.com, third@example.com"
    utf8["Subject"] = "Grüße aus Köln ☃"
    utf8["Message-ID"] = email.utils.make_msgid(domain="example.com")
    utf8.set_content("Héllo wörld, ünïcode body ✓\n", cte="8bit")
    return plain, utf8


# --- the SMTP catcher ------------------------------------------------------------


def test_catcher_process_saves_each_message_and_stops_on_sigterm(
    tmp_path: Path, processes: Processes
) -> None:
    port = free_port()
    maildir = tmp_path / "mail"
    log = tmp_path / "catcher.log"
    cmd = [sys.executable, "-m", "devtools.smtp_catcher", "--host", "127.0.0.1"]
    proc = processes.start([*cmd, "--port", str(port), "--maildir", str(maildir)], log)
    wait_for(lambda: port_open(port), 20, "the catcher to listen", proc, log)

    plain, utf8 = catcher_messages()
    utf8_raw = utf8.as_bytes(policy=email.policy.SMTPUTF8)  # raw UTF-8 headers, 8-bit body
    assert "Köln".encode() in utf8_raw
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("smtputf8")
        assert smtp.has_extn("8bitmime")
        assert not smtp.has_extn("auth")
        assert not smtp.has_extn("starttls")
        smtp.send_message(plain)
        smtp.sendmail(
            "sender@example.com",
            ["second@example.com", "third@example.com"],
            utf8_raw,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )

    files = wait_for(
        lambda: emls(maildir) if len(emls(maildir)) >= 2 else None, 10, "two .eml files", proc, log
    )
    assert len(files) == 2
    assert all(EML_NAME.match(f.name) for f in files), files
    assert sorted(p.name for p in maildir.iterdir()) == [f.name for f in files]  # no temp files
    first, second = (parse(f.read_bytes()) for f in files)  # names sort by arrival
    assert first["Message-ID"] == plain["Message-ID"]
    assert first["Subject"] == "Plain subject"
    assert ".A line that starts with a dot." in first.get_content()  # dot-unstuffed
    assert second["Message-ID"] == utf8["Message-ID"]
    assert second["Subject"] == "Grüße aus Köln ☃"
    assert "Héllo wörld, ünïcode body ✓" in second.get_content()
    assert files[1].read_bytes() == utf8_raw  # exactly the DATA section

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0

    output = log.read_text()
    for path, subject, to in [
        (files[0], "Plain subject", "first@example.com"),
        (files[1], "Grüße aus Köln ☃", "second@example.com,third@example.com"),
    ]:
        [line] = [line for line in output.splitlines() if path.name in line]
        assert "from=sender@example.com" in line
        assert f"to={to}" in line
        assert subject in line
    assert "plain body" not in output.lower()
    assert "ünïcode body" not in output


def test_catcher_in_process_api(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="devtools.smtp_catcher")
    with SmtpCatcher(tmp_path / "mail") as catcher:
        assert catcher.port != 0
        message = EmailMessage()
        message["From"] = "a@example.com"
        message["To"] = "b@example.com"
        message["Subject"] = "Hello"
        message.set_content("secret body\n")
        with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as smtp:
            smtp.send_message(message)
        [path] = emls(catcher.maildir)
    assert parse(path.read_bytes())["Subject"] == "Hello"
    [record] = [r for r in caplog.records if path.name in r.getMessage()]
    assert "subject='Hello'" in record.getMessage()
    assert "secret body" not in caplog.text
    assert not port_open(catcher.port)


# --- dev.py ----------------------------------------------------------------------


def runner_env(redis_port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):  # what the runner sets must come from the runner
        if name.startswith(("MAIL_", "FLASKY_", "FLASK_", "DEV_SMTP_")) or name in (
            "DATABASE_URL",
            "SECRET_KEY",
        ):
            del env[name]
    env.update(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", FLASKY_ADMIN="admin@example.com")
    env.update(extra)
    return env


def test_runner_says_when_redis_is_elsewhere_and_does_not_answer(
    tmp_path: Path, processes: Processes
) -> None:
    """dev.py starts a Redis of its own only for a REDIS_URL on this machine (127.0.0.2 is a
    loopback address, but not one dev.py counts as local: nothing there answers)."""
    redis_port = free_port()
    env = runner_env(redis_port, REDIS_URL=f"redis://127.0.0.2:{redis_port}/0")
    log = tmp_path / "dev.log"
    cmd = [sys.executable, "dev.py", "--no-install", "--instance", str(tmp_path / "instance")]
    proc = processes.start(cmd, log, env=env)
    assert proc.wait(timeout=30) != 0
    [line] = [line for line in log.read_text().splitlines() if line.startswith("dev.py:")]
    assert line == (
        f"dev.py: no Redis answers at 127.0.0.2:{redis_port}:"
        " start one there, or point REDIS_URL at one"
    )


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # surface the 302 as an HTTPError


def http_ok(url: str) -> bool:
    try:
        with urlopen(url, timeout=2) as response:  # noqa: S310 (our own local server)
            return response.status == 200
    except (URLError, OSError):
        return False


def csrf_token(page: str) -> str:
    for tag in re.findall(r"<input\b[^>]*>", page):
        if re.search(r'\bname="csrf_token"', tag):
            match = re.search(r'\bvalue="([^"]*)"', tag)
            assert match, tag
            return match.group(1)
    raise AssertionError("no csrf_token input in the page")


def eml_mentioning(maildir: Path, text: str) -> Path | None:
    for path in emls(maildir):
        if text in message_text(parse(path.read_bytes())):
            return path
    return None


@dataclass
class Runner:
    proc: subprocess.Popen[bytes]
    log: Path
    instance: Path
    web_port: int
    smtp_port: int
    redis_port: int
    flower_port: int
    watch: Callable[[], set[int]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    def wait_for(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        return wait_for(check, timeout, what, self.proc, self.log, self.watch)

    def children_and_groups(self) -> tuple[set[int], set[int]]:
        """The runner's current descendants and their process groups."""
        children = self.watch()
        return children, {stat[2] for pid in children if (stat := proc_stat(pid))}


def start_runner(tmp_path: Path, processes: Processes) -> Runner:
    """dev.py --no-install on free ports, with REDIS_URL at a port where nothing listens."""
    assert shutil.which("redis-server"), "no redis-server (dev.py test adds the embedded one)"
    web_port, smtp_port, redis_port, flower_port = free_ports(4)
    assert not redis_answers(redis_port)  # so dev.py has to start its own Redis
    instance = tmp_path / "instance"
    log = tmp_path / "dev.log"
    cmd = [sys.executable, "dev.py", "--no-install", "--port", str(web_port)]
    cmd += ["--smtp-port", str(smtp_port), "--flower-port", str(flower_port)]
    cmd += ["--instance", str(instance)]
    proc = processes.start(cmd, log, env=runner_env(redis_port))
    runner = Runner(
        proc,
        log,
        instance,
        web_port,
        smtp_port,
        redis_port,
        flower_port,
        processes.remember_offspring,
    )
    runner.wait_for(lambda: http_ok(runner.url), 60, "the web app to answer")
    return runner


def assert_all_gone(children: set[int], groups: set[int]) -> None:
    assert [pid for pid in children if alive(pid)] == []
    in_groups = [pid for pid, (_, _, pgid) in all_processes().items() if pgid in groups]
    assert [pid for pid in in_groups if alive(pid)] == []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_runner_starts_everything_and_stops_everything(
    tmp_path: Path, processes: Processes
) -> None:
    runner = start_runner(tmp_path, processes)
    assert redis_answers(runner.redis_port)

    opener = build_opener(HTTPCookieProcessor(CookieJar()), _NoRedirect())
    with opener.open(runner.url, timeout=10) as response:
        token = csrf_token(response.read().decode())
    name = f"Ada{secrets.token_hex(4)}"
    form = urlencode({"name": name, "csrf_token": token}).encode()
    with pytest.raises(HTTPError) as redirect:
        opener.open(Request(runner.url, data=form), timeout=10)  # noqa: S310 (local)
    assert redirect.value.code == 302

    maildir = runner.instance / "mail"
    found = runner.wait_for(lambda: eml_mentioning(maildir, name), 90, f"an .eml mentioning {name}")
    assert EML_NAME.match(found.name)

    flower = f"http://127.0.0.1:{runner.flower_port}/healthcheck"
    runner.wait_for(lambda: http_ok(flower), 60, "Flower to answer")
    children, groups = runner.children_and_groups()
    assert len(groups) >= 6, tail(runner.log)  # redis, smtp, web, worker, beat, flower
    runner.proc.send_signal(signal.SIGINT)
    assert runner.proc.wait(timeout=20) == 0, tail(runner.log)

    assert_all_gone(children, groups)
    assert not redis_answers(runner.redis_port)
    assert not port_open(runner.web_port)
    assert not port_open(runner.smtp_port)
    assert not port_open(runner.flower_port)
    output = runner.log.read_text()
    for prefix in (
        "dev    | ",
        "db     | ",
        "web    | ",
        "worker | ",
        "beat   | ",
        "smtp   | ",
        "flower | ",
    ):
        assert prefix in output
    assert "redis  | " in output
    assert runner.url in output


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_runner_stops_everything_when_a_child_dies(tmp_path: Path, processes: Processes) -> None:
    runner = start_runner(tmp_path, processes)
    children, groups = runner.children_and_groups()
    [catcher] = [pid for pid in children if "devtools.smtp_catcher" in cmdline(pid)]

    os.kill(catcher, signal.SIGKILL)
    assert runner.proc.wait(timeout=20) != 0, tail(runner.log)

    assert_all_gone(children, groups)
    assert not redis_answers(runner.redis_port)
    last = runner.log.read_text().splitlines()[-1]
    assert last == "dev.py: smtp exited with status -9"
