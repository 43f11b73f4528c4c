"""Configuration classes, read from the environment (12-factor).

Every setting that a deployment changes comes from an environment variable; the classes only
hold defaults and the rules for reading them. A bad value stops start-up with one line that
names the variable (`ConfigError`), instead of failing later inside a request or a task.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from web.outbox.addresses import check_address


class ConfigError(RuntimeError):
    """A configuration value is missing or invalid; the message names the variable."""


# Exit status for a start-up error. 3 is the one status that makes gunicorn stop, instead of
# starting a new worker (that fails the same way) forever.
STARTUP_ERROR_EXIT_STATUS = 3


def exit_on_startup_error(kind: str, message: object) -> NoReturn:
    """One clear line on stderr ("flasky: KIND: MESSAGE") and exit status 3: no traceback for a
    mistake in the setup (the configuration, an unmigrated database)."""
    print(f"flasky: {kind}: {message}", file=sys.stderr)
    raise SystemExit(STARTUP_ERROR_EXIT_STATUS)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _check_address(name: str, value: str | None, *, required: bool = False) -> None:
    if not value:
        if required:
            raise ConfigError(f"{name} is required")
        return
    try:
        check_address(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


_PASSWORD_HASH_METHODS = {"scrypt", "pbkdf2"}


def _admin_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The admin's credentials (all None: the admin area refuses every login) and login limit."""
    username = env.get("ADMIN_USERNAME") or None
    password_hash = env.get("ADMIN_PASSWORD_HASH") or None
    password = env.get("ADMIN_PASSWORD") or None
    if password_hash and password:
        raise ConfigError("ADMIN_PASSWORD_HASH and ADMIN_PASSWORD are exclusive: set only one")
    if bool(username) != bool(password_hash or password):
        raise ConfigError(
            "ADMIN_USERNAME and ADMIN_PASSWORD_HASH (or ADMIN_PASSWORD) must be set together"
        )
    if password_hash:
        method, *rest = password_hash.split("$")
        if len(rest) != 2 or method.partition(":")[0] not in _PASSWORD_HASH_METHODS:
            raise ConfigError(
                "ADMIN_PASSWORD_HASH must be a werkzeug password hash (generate one with: "
                "python3 -c 'import getpass, werkzeug.security as s; "
                "print(s.generate_password_hash(getpass.getpass()))')"
            )
    return {
        "ADMIN_USERNAME": username,
        "ADMIN_PASSWORD_HASH": password_hash,
        "ADMIN_PASSWORD": password,
        "ADMIN_LOGIN_RATE_LIMIT": env_rate_limit(env, "ADMIN_LOGIN_RATE_LIMIT", "5 per minute"),
    }


def env_rate_limit(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    """A Flask-Limiter rate limit such as '10 per minute' (several: '10/minute;100/hour')."""
    value = env.get(name) or default
    if value is None:
        return None
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be a rate limit such as '10 per minute', got {value!r}"
        ) from None
    return value


def _queue_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The queue's values; celeryconfig.py says what each one does and maps them to Celery."""
    return {
        "CELERY_TASK_SOFT_TIME_LIMIT": env_int(env, "CELERY_TASK_SOFT_TIME_LIMIT", 30, minimum=1),
        "CELERY_TASK_TIME_LIMIT": env_int(env, "CELERY_TASK_TIME_LIMIT", 45, minimum=1),
        "CELERY_VISIBILITY_TIMEOUT": env_int(env, "CELERY_VISIBILITY_TIMEOUT", 600, minimum=1),
        "CELERY_BROKER_SOCKET_TIMEOUT": env_float(
            env, "CELERY_BROKER_SOCKET_TIMEOUT", 0.5, minimum=0.05
        ),
        "CELERY_SOFT_SHUTDOWN_TIMEOUT": env_float(env, "CELERY_SOFT_SHUTDOWN_TIMEOUT", 20.0),
        "CELERY_MAX_TASKS_PER_CHILD": env_int(env, "CELERY_MAX_TASKS_PER_CHILD", 10000, minimum=1),
        "CELERY_BEAT_SCHEDULE": env.get("CELERY_BEAT_SCHEDULE") or "celerybeat-schedule",
        # How long a claimed row belongs to one worker before the sweeper may hand it to another.
        "FLASKY_LEASE_SECONDS": env_int(env, "FLASKY_LEASE_SECONDS", 60, minimum=1),
        # The longest countdown a task retry may carry; longer waits are left to the sweeper.
        "FLASKY_MAX_COUNTDOWN": env_int(env, "FLASKY_MAX_COUNTDOWN", 60, minimum=1),
        "FLASKY_SWEEP_INTERVAL": env_float(env, "FLASKY_SWEEP_INTERVAL", 15.0, minimum=0.1),
        # How long a starting worker waits for the database to be migrated (web/schema.py).
        "FLASKY_MIGRATION_WAIT": env_float(env, "FLASKY_MIGRATION_WAIT", 60.0),
    }


def check_wait_chain(config: Mapping[str, Any]) -> None:
    """Raise ConfigError unless every wait sits inside the next one (celeryconfig.py's chain),
    on the final values: the environment's, with the app's overrides and its CELERY settings."""
    celery = config["CELERY"]
    visibility_timeout = celery["broker_transport_options"]["visibility_timeout"]
    chain = [
        ("MAIL_TIMEOUT", config["MAIL_TIMEOUT"]),
        ("CELERY_TASK_SOFT_TIME_LIMIT", celery["task_soft_time_limit"]),
        ("CELERY_TASK_TIME_LIMIT", celery["task_time_limit"]),
        ("FLASKY_LEASE_SECONDS", config["FLASKY_LEASE_SECONDS"]),
        ("CELERY_VISIBILITY_TIMEOUT", visibility_timeout),
    ]
    for (small_name, small), (big_name, big) in itertools.pairwise(chain):
        if not small < big:
            raise ConfigError(f"{small_name} ({small}) must be less than {big_name} ({big})")
    if not config["FLASKY_MAX_COUNTDOWN"] < visibility_timeout:
        raise ConfigError(
            f"FLASKY_MAX_COUNTDOWN ({config['FLASKY_MAX_COUNTDOWN']}) must be less than "
            f"CELERY_VISIBILITY_TIMEOUT ({visibility_timeout})"
        )


# --- where the data lives: the database and Redis ---------------------------------------------

_DATABASES = (
    "SQLite (sqlite:////path/to/flasky.sqlite) and PostgreSQL (postgresql://user:password@host/db)"
)


def env_database_url(env: Mapping[str, str], instance_path: str) -> str:
    """DATABASE_URL as SQLAlchemy takes it; without one, SQLite in the instance folder.

    flasky runs on SQLite (Python's sqlite3) and on PostgreSQL through psycopg 3: the drivers it
    installs and tests. `postgres://` (Heroku) and `postgresql://` get psycopg's dialect; any
    other database or driver is refused here, by name, instead of by an import error or a
    traceback when the engine is made. The URL is parsed, not connected to (a database that is
    down is /readyz's business), and a message never repeats it: it may hold a password.
    """
    url = env.get("DATABASE_URL") or ""
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "flasky.sqlite")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"DATABASE_URL is not a database URL; flasky supports {_DATABASES}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise ConfigError(
                f"DATABASE_URL: flasky reaches PostgreSQL through psycopg 3, not {driver!r}: "
                "write postgresql://user:password@host/db"
            )
        return "postgresql+psycopg://" + url.partition("://")[2]
    if backend != "sqlite":
        raise ConfigError(f"DATABASE_URL: flasky supports {_DATABASES}, not {backend!r}")
    if driver not in ("", "pysqlite"):
        raise ConfigError(
            f"DATABASE_URL: flasky reaches SQLite through Python's sqlite3, not {driver!r}: "
            "write sqlite:////path/to/flasky.sqlite"
        )
    _check_sqlite_folder(parsed.database, instance_path)
    return url


def _check_sqlite_folder(database: str | None, instance_path: str) -> None:
    """SQLite creates a missing file but not a missing folder, and says only "unable to open
    database file" at the first query. The instance folder counts as there: create_app makes it."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = os.path.dirname(os.path.abspath(database))
    if folder != os.path.abspath(instance_path) and not os.path.isdir(folder):
        raise ConfigError(f"DATABASE_URL: the SQLite file's folder does not exist: {folder}")


_REDIS_SCHEMES = ("redis", "rediss")


def env_redis_url(env: Mapping[str, str]) -> str:
    """REDIS_URL, a redis:// or rediss:// URL (default: the local Redis, database 0).

    Three libraries read it: kombu (the broker), limits (the rate limits, unless
    RATELIMIT_STORAGE_URI says otherwise) and redis-py (/readyz). redis:// and rediss:// are
    the forms all three read alike; a Unix socket is unix:// to redis-py, redis+socket:// to
    kombu and redis+unix:// to limits, so flasky takes none of them. Checked here, a wrong URL
    is one line at start-up, not an "unknown storage scheme" traceback.
    """
    url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    parts = urlsplit(url)
    if parts.scheme not in _REDIS_SCHEMES or not url.startswith(f"{parts.scheme}://"):
        got = f"{parts.scheme}://" if "://" in url else "no scheme"
        raise ConfigError(
            "REDIS_URL must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0 "
            f"(Unix sockets are not supported), got {got}"
        )
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ConfigError("REDIS_URL: the port is not a number from 1 to 65535") from None
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise ConfigError(
            f"REDIS_URL: the path must be a database number such as /0, got /{database}"
        )
    return url


# What limits (Flask-Limiter's storage) can reach with the packages flasky installs.
_RATE_LIMIT_STORAGE_SCHEMES = ("redis", "rediss", "redis+unix", "memory")


def env_rate_limit_storage(env: Mapping[str, str], redis_url: str) -> str:
    """RATELIMIT_STORAGE_URI, where the rate limits are counted: REDIS_URL unless set."""
    uri = env.get("RATELIMIT_STORAGE_URI") or redis_url
    scheme = urlsplit(uri).scheme
    if scheme not in _RATE_LIMIT_STORAGE_SCHEMES or "://" not in uri:
        raise ConfigError(
            "RATELIMIT_STORAGE_URI must be a redis://, rediss://, redis+unix:// or memory:// "
            f"URL, got {scheme + '://' if '://' in uri else 'no scheme'}"
        )
    return uri


class Config:
    """Settings shared by every environment. `load()` fills them from the environment."""

    NAME = "base"
    DEBUG = False
    TESTING = False
    DEV_SECRET_KEY = None
    SESSION_COOKIE_SECURE = True  # the session (admin login) travels over HTTPS only
    # New names per client address: nobody can flood the admin's inbox. None: no limit.
    FORM_RATE_LIMIT: str | None = "10 per minute"

    @classmethod
    def load(cls, env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
        """Return the Flask config mapping for this environment, or raise ConfigError."""
        secret_key = env.get("SECRET_KEY") or cls.DEV_SECRET_KEY
        if not secret_key:
            raise ConfigError(
                f"SECRET_KEY is required in the {cls.NAME} configuration "
                "(generate one with: python3 -c 'import secrets; print(secrets.token_hex())')"
            )
        mail_use_tls = env_bool(env, "MAIL_USE_TLS", False)
        mail_use_ssl = env_bool(env, "MAIL_USE_SSL", False)
        if mail_use_tls and mail_use_ssl:
            raise ConfigError("MAIL_USE_TLS and MAIL_USE_SSL are exclusive: set only one")
        mail_port = env_int(env, "MAIL_PORT", 465 if mail_use_ssl else 25, minimum=1)
        if mail_port > 65535:
            raise ConfigError(f"MAIL_PORT must be a TCP port (1-65535), got {mail_port}")
        mail_ca_file = env.get("MAIL_CA_FILE") or None
        if mail_ca_file and not os.path.isfile(mail_ca_file):
            raise ConfigError(f"MAIL_CA_FILE does not name a readable file: {mail_ca_file!r}")
        sender = env.get("FLASKY_MAIL_SENDER", "Flasky Admin <flasky@example.com>")
        admin = env.get("FLASKY_ADMIN") or None
        _check_address("FLASKY_MAIL_SENDER", sender, required=True)
        _check_address("FLASKY_ADMIN", admin)

        retry_base = env_float(env, "FLASKY_RETRY_BACKOFF_BASE", 30.0, minimum=0.01)
        retry_cap = env_float(env, "FLASKY_RETRY_BACKOFF_CAP", 3600.0, minimum=0.01)
        if retry_cap < retry_base:
            raise ConfigError("FLASKY_RETRY_BACKOFF_CAP must be at least FLASKY_RETRY_BACKOFF_BASE")

        database_url = env_database_url(env, instance_path)
        redis_url = env_redis_url(env)
        return {
            "CONFIG_NAME": cls.NAME,
            "DEBUG": cls.DEBUG,
            "TESTING": cls.TESTING,
            "SECRET_KEY": secret_key,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "RATELIMIT_STORAGE_URI": env_rate_limit_storage(env, redis_url),
            "MAIL_SERVER": env.get("MAIL_SERVER", "localhost"),
            "MAIL_PORT": mail_port,
            "MAIL_USE_TLS": mail_use_tls,
            "MAIL_USE_SSL": mail_use_ssl,
            "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
            "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
            "MAIL_TIMEOUT": env_float(env, "MAIL_TIMEOUT", 10.0, minimum=0.1),
            "MAIL_CA_FILE": mail_ca_file,
            "MAIL_IDLE_CHECK_SECONDS": env_float(env, "MAIL_IDLE_CHECK_SECONDS", 10.0),
            "MAIL_MAX_MESSAGES_PER_CONNECTION": env_int(
                env, "MAIL_MAX_MESSAGES_PER_CONNECTION", 100, minimum=1
            ),
            "MAIL_DEFAULT_SENDER": sender,
            "FLASKY_MAIL_SENDER": sender,
            "FLASKY_MAIL_SUBJECT_PREFIX": env.get("FLASKY_MAIL_SUBJECT_PREFIX", "[Flasky]"),
            "FLASKY_ADMIN": admin,
            "FLASKY_MAX_ATTEMPTS": env_int(env, "FLASKY_MAX_ATTEMPTS", 8, minimum=1),
            "FLASKY_RETRY_BACKOFF_BASE": retry_base,
            "FLASKY_RETRY_BACKOFF_CAP": retry_cap,
            "FLASKY_SWEEP_GRACE": env_float(env, "FLASKY_SWEEP_GRACE", 30.0, minimum=0.0),
            "FLASKY_SWEEP_QUEUE_TARGET": env_int(env, "FLASKY_SWEEP_QUEUE_TARGET", 5000, minimum=1),
            # Email ids per Celery message: one message, one claim for up to this many emails.
            "FLASKY_BATCH_SIZE": env_int(env, "FLASKY_BATCH_SIZE", 100, minimum=1),
            # SMTP sessions a worker process keeps open and sends on at the same time: what
            # lets one process keep up with a relay that takes a second per message.
            "FLASKY_SMTP_CONNECTIONS": env_int(env, "FLASKY_SMTP_CONNECTIONS", 8, minimum=1),
            "FLASKY_MAX_ATTACHMENT_BYTES": env_int(
                env, "FLASKY_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024, minimum=0
            ),
            # The SMTP catcher's folder (devtools/smtp_catcher.py reads the same variable),
            # shown at /dev/inbox/ in development.
            "DEV_SMTP_MAILDIR": os.path.abspath(
                env.get("DEV_SMTP_MAILDIR") or os.path.join(instance_path, "mail")
            ),
            "WTF_CSRF_ENABLED": True,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": cls.SESSION_COOKIE_SECURE,
            "FLASKY_FORM_RATE_LIMIT": env_rate_limit(
                env, "FLASKY_FORM_RATE_LIMIT", cls.FORM_RATE_LIMIT
            ),
            **_admin_settings(env),
            **_queue_settings(env),
        }


class DevelopmentConfig(Config):
    NAME = "development"
    DEBUG = True
    DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - development only, never used elsewhere
    SESSION_COOKIE_SECURE = False  # http://127.0.0.1


class TestingConfig(Config):
    NAME = "testing"
    TESTING = True
    DEV_SECRET_KEY = "testing-only-not-secret"  # noqa: S105 - tests only
    SESSION_COOKIE_SECURE = False  # the test client speaks plain HTTP
    FORM_RATE_LIMIT = None  # tests post many names from one address; one test sets a limit


class ProductionConfig(Config):
    NAME = "production"


CONFIGS: dict[str, type[Config]] = {
    c.NAME: c for c in (DevelopmentConfig, TestingConfig, ProductionConfig)
}


def config_name(env: Mapping[str, str]) -> tuple[str, str]:
    """The configuration's name and the variable that gave it: `FLASKY_CONFIG`, else the book's
    `FLASK_CONFIG`, else production.

    The book's readers have FLASK_CONFIG in their shell, so it is read, with the same names. Set
    to different names, the two are refused rather than one silently winning. The book's
    'default' is not a name here: it meant development there, and flasky's default is
    production.
    """
    flasky, book = env.get("FLASKY_CONFIG"), env.get("FLASK_CONFIG")
    if flasky and book and flasky != book:
        raise ConfigError(
            f"FLASKY_CONFIG is {flasky!r} but FLASK_CONFIG is {book!r}: unset FLASK_CONFIG "
            "(the book's name for FLASKY_CONFIG) or give both the same value"
        )
    if book:  # FLASKY_CONFIG unset, or a copy of it (.flaskenv makes one)
        return book, "FLASK_CONFIG"
    if flasky:
        return flasky, "FLASKY_CONFIG"
    return "production", "FLASKY_CONFIG"


def load_config(name: str | None, env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Pick the config class by name (or from the environment: `config_name`) and load it."""
    variable = "FLASKY_CONFIG"
    if not name:
        name, variable = config_name(env)
    try:
        config_class = CONFIGS[name]
    except KeyError:
        hint = " (the book's 'default' is development)" if name == "default" else ""
        raise ConfigError(
            f"{variable} must be one of {', '.join(sorted(CONFIGS))}, got {name!r}{hint}"
        ) from None
    return config_class.load(env, instance_path)
