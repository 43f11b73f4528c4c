"""A real install: the wheel built from a clean copy of the repository, installed with its
dependencies (pinned by requirements.lock) into a fresh venv, runs the app from a folder
outside the repository: the migrations, the form, and its email delivered by the worker.

Nothing here may come from the source tree: the processes run from another folder, without
PYTHONPATH, on the venv's own `flask`, `gunicorn` and `celery`. pip reuses its cache, so only
what it has never seen is downloaded.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.environment import ADMIN, ROOT
from devtools.ports import free_port
from devtools.processes import Process, running
from devtools.smtp_server import SMTPServer
from devtools.waiting import wait_until
from devtools.webclient import Client, csrf_token

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def clean_copy(destination: Path) -> Path:
    """The files a clone of the repository would have, with the uncommitted changes: what git
    tracks, and what it would track (no .venv, instance, caches or build folders)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not there
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def run(args: list[str], **kwargs: object) -> str:
    """Run a set-up command; its output, or a failure that shows it."""
    result = subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240, **kwargs
    )
    assert result.returncode == 0, (
        f"{args[:4]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout + result.stderr


def test_the_wheel_installed_in_a_fresh_venv_serves_the_form_and_delivers_its_email(
    tmp_path: Path, redis_url: str, smtp_server: SMTPServer, processes: list[Process]
) -> None:
    source = clean_copy(tmp_path / "clone")
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(source)])
    (wheel,) = dist.glob("flasky-*.whl")

    run([sys.executable, "-m", "venv", str(venv)])
    bin_dir = venv / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--progress-bar", "off"]
    run([*pip, "--constraint", str(source / "requirements.lock"), str(wheel)])

    elsewhere = tmp_path / "elsewhere"  # not the repository, nor the copy
    elsewhere.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "FLASKY_CONFIG": "production",
        "SECRET_KEY": secrets.token_hex(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'flasky.sqlite'}",
        "REDIS_URL": redis_url,
        "MAIL_SERVER": smtp_server.host,
        "MAIL_PORT": str(smtp_server.port),
        "FLASKY_ADMIN": ADMIN,
    }
    where = "import celeryconfig, web; print(web.__file__, web.RESOURCES, celeryconfig.__file__)"
    imported = run([str(bin_dir / "python"), "-c", where], cwd=elsewhere, env=env).split()
    site_packages = Path(imported[0]).parents[1]
    assert site_packages.is_relative_to(venv) and site_packages.name == "site-packages"
    assert imported[1:] == [str(site_packages / "web"), str(site_packages / "celeryconfig.py")]

    migrated = run(
        [str(bin_dir / "flask"), "--app", "web", "db", "upgrade"], cwd=elsewhere, env=env
    )
    assert "Running upgrade" in migrated

    port = free_port()
    gunicorn = [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--no-control-socket"]
    celery = [str(bin_dir / "celery"), "-A", "worker", "worker", "--pool", "threads"]
    for name, args in (
        ("web", [*gunicorn, "web:create_app()"]),
        ("worker", [*celery, "--concurrency", "2", "--loglevel", "INFO"]),
    ):
        processes.append(Process(name, args, env, log_dir=tmp_path, cwd=elsewhere))
    web, worker = processes

    site = Client(f"http://127.0.0.1:{port}")
    wait_until(lambda: running(web) and site.answers("/readyz"), 60, "web's /readyz")
    wait_until(lambda: running(worker) and " ready." in worker.output(), 60, "the worker")
    assert site.get("/static/style.css").status == 200

    user = "Installed Tester"
    reply = site.post_form("/", {"name": user, "csrf_token": csrf_token(site.get("/").body)})
    assert reply.status == 200 and user in reply.body
    (message,) = smtp_server.wait_for_messages(1, timeout=30)
    assert message.rcpt_tos == [ADMIN]
    assert user in message.parsed().get_body(("plain",)).get_content()
    # Installed, the instance folder is Flask's default for an installed package, not in it.
    assert not (site_packages / "instance").exists()
    assert (venv / "var" / "web-instance").is_dir()
