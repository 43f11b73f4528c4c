"""What the figures were measured on: hardware, versions, and how busy the machine was."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from bench.report import Table
from bench.stack import Stack

CODE_UNDER_TEST = ("web", "worker", "celeryconfig.py", "templates", "migrations")
PACKAGES = (
    "Flask",
    "Flask-Mail",
    "celery",
    "kombu",
    "redis",
    "SQLAlchemy",
    "psycopg",
    "gunicorn",
    "aiosmtpd",
)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def revision() -> str:
    """The code measured: the last commit of the code under test, and whether it had
    uncommitted changes (read-only git commands; commits elsewhere do not matter here)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h", "--", *CODE_UNDER_TEST) or "unknown"
    changed = git("status", "--porcelain", "--", *CODE_UNDER_TEST).splitlines()
    if changed:
        return f"{commit} + {len(changed)} uncommitted change(s) in the code under test"
    return commit


def summary() -> str:
    """The machine in a few words, for the charts' titles."""
    return f"{os.cpu_count()} × {_cpu_model()}, {_memory_gib():.0f} GiB"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def describe(stack: Stack, load_before: str, revision_before: str) -> Table:
    table = Table("Machine and code", ["", ""])
    table.add("CPU", f"{os.cpu_count()} × {_cpu_model()} (nproc {len(os.sched_getaffinity(0))})")
    table.add("memory", f"{_memory_gib():.1f} GiB")
    table.add("kernel", platform.release())
    table.add("Python", platform.python_version())
    table.add("PostgreSQL", f"{stack.database.version()} (local, 127.0.0.1:5432)")
    table.add("Redis", stack.redis.version())
    table.add("packages", ", ".join(f"{name} {metadata.version(name)}" for name in PACKAGES))
    table.add("load average (1, 5, 15 min) at start", load_before)
    table.add("load average at end", load())
    revision_after = revision()
    table.add("code measured (last git commit of web/, worker/, …)", revision_before)
    if revision_after != revision_before:
        table.add("**warning**", f"the code changed during the run: {revision_after} at the end")
    return table
