"""A throwaway database on the local PostgreSQL server (the tests' and the benchmarks')."""

from __future__ import annotations

import os
import secrets

import psycopg

from devtools.pg_server import DEFAULT_URL

# dev.py sets it to its own throwaway server's when nothing answers at this one (pg_server.py).
POSTGRES_ADMIN_URL = os.environ.get("FLASKY_TEST_POSTGRES_URL", DEFAULT_URL)


class PostgresDatabase:
    """A database of its own, named `<prefix>_<random>`: created, then dropped at the end
    (create() and drop(), or `with PostgresDatabase() as database:`)."""

    def __init__(self, prefix: str = "flasky_test", admin_url: str = POSTGRES_ADMIN_URL) -> None:
        self.name = f"{prefix}_{secrets.token_hex(4)}"
        self.admin_url = admin_url

    @property
    def dsn(self) -> str:
        """The libpq URL, for psycopg directly."""
        return f"{self.admin_url.rsplit('/', 1)[0]}/{self.name}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (psycopg 3)."""
        return self.dsn.replace("postgresql://", "postgresql+psycopg://", 1)

    def create(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def __enter__(self) -> PostgresDatabase:
        self.create()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.drop()

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def version(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def empty(self) -> None:
        """Empty every table but Alembic's (between scenarios or repeats), ids from 1 again."""
        with self.connect() as conn:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            tables = [row[0] for row in conn.execute(query) if row[0] != "alembic_version"]
            if tables:
                names = ", ".join(f'"{table}"' for table in tables)
                conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
