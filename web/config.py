"""Configuration classes, read from the environment (12-factor).

Every setting that a deployment changes comes from an environment variable; the classes only
hold defaults and the rules for reading them. A bad value stops start-up with one line that
names the variable (`ConfigError`), instead of failing later inside a request or a task.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from web.outbox.addresses import check_address
from web.secret_strength import admin_password_problem, secret_key_problem


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
    # A working day; an hour without a request (the open dashboard's polling is a request).
    lifetime = env_int(env, "ADMIN_SESSION_LIFETIME", 12 * 3600, minimum=300)
    idle_timeout = env_int(env, "ADMIN_SESSION_IDLE_TIMEOUT", 3600, minimum=300)
    if idle_timeout > lifetime:
        raise ConfigError(
            f"ADMIN_SESSION_IDLE_TIMEOUT ({idle_timeout}) must be at most "
            f"ADMIN_SESSION_LIFETIME ({lifetime})"
        )
    return {
        "ADMIN_USERNAME": username,
        "ADMIN_PASSWORD_HASH": password_hash,
        "ADMIN_PASSWORD": password,
        "ADMIN_LOGIN_RATE_LIMIT": env_rate_limit(env, "ADMIN_LOGIN_RATE_LIMIT", "5 per minute"),
        "ADMIN_SESSION_LIFETIME": lifetime,
        "ADMIN_SESSION_IDLE_TIMEOUT": idle_timeout,
        # Flask refuses a session cookie signed longer ago than this (Flask's default: 31 days).
        "PERMANENT_SESSION_LIFETIME": lifetime,
    }


# RFC 6750's characters of a bearer token; 16 of them at least, so that guessing is hopeless.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]{16,}=*")


def env_metrics_token(env: Mapping[str, str]) -> str | None:
    """METRICS_TOKEN: the bearer token that reads /metrics besides the admin's session (None:
    only the session). From the environment only, like every secret here."""
    token = env.get("METRICS_TOKEN") or None
    if token is not None and not _BEARER_TOKEN.fullmatch(token):
        raise ConfigError(
            "METRICS_TOKEN must be at least 16 characters of A-Z a-z 0-9 . _ ~ + / - "
            "(generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


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


# A batch's sends start within this share of the task's soft time limit; an email whose turn
# comes later is given back to the outbox (worker/tasks.py).
SEND_BUDGET_SHARE = 0.8


def _queue_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The queue's values; celeryconfig.py says what each one does and maps them to Celery."""
    return {
        "CELERY_TASK_SOFT_TIME_LIMIT": env_int(env, "CELERY_TASK_SOFT_TIME_LIMIT", 30, minimum=1),
        "CELERY_TASK_TIME_LIMIT": env_int(env, "CELERY_TASK_TIME_LIMIT", 180, minimum=1),
        "CELERY_VISIBILITY_TIMEOUT": env_int(env, "CELERY_VISIBILITY_TIMEOUT", 600, minimum=1),
        "CELERY_BROKER_SOCKET_TIMEOUT": env_float(
            env, "CELERY_BROKER_SOCKET_TIMEOUT", 0.5, minimum=0.05
        ),
        "CELERY_SOFT_SHUTDOWN_TIMEOUT": env_float(env, "CELERY_SOFT_SHUTDOWN_TIMEOUT", 20.0),
        "CELERY_MAX_TASKS_PER_CHILD": env_int(env, "CELERY_MAX_TASKS_PER_CHILD", 10000, minimum=1),
        "CELERY_BEAT_SCHEDULE": env.get("CELERY_BEAT_SCHEDULE") or "celerybeat-schedule",
        # How long a claimed row belongs to one worker before the sweeper may hand it to another.
        "FLASKY_LEASE_SECONDS": env_int(env, "FLASKY_LEASE_SECONDS", 240, minimum=1),
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
    # A batch's last send starts by 80% of the soft limit (worker/tasks.py), and its reply to
    # the final "." may take MAIL_DATA_TIMEOUT: all of that must end inside the hard limit.
    data_timeout, time_limit = config["MAIL_DATA_TIMEOUT"], celery["task_time_limit"]
    if not config["MAIL_TIMEOUT"] <= data_timeout:
        raise ConfigError(
            f"MAIL_DATA_TIMEOUT ({data_timeout}) must be at least MAIL_TIMEOUT "
            f"({config['MAIL_TIMEOUT']})"
        )
    last_start = SEND_BUDGET_SHARE * celery["task_soft_time_limit"]
    if not last_start + data_timeout < time_limit:
        raise ConfigError(
            f"MAIL_DATA_TIMEOUT ({data_timeout}) plus {SEND_BUDGET_SHARE:.0%} of "
            f"CELERY_TASK_SOFT_TIME_LIMIT ({last_start:g}) must be less than "
            f"CELERY_TASK_TIME_LIMIT ({time_limit})"
        )
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


# Settings that changed name with their meaning: still set, they would be ignored in silence.
_RENAMED = {"FLASKY_MAX_ATTACHMENT_BYTES": "FLASKY_MAX_MESSAGE_BYTES"}
_RENAMED_WHY = {
    "FLASKY_MAX_ATTACHMENT_BYTES": "the limit counts the whole message as sent, attachments "
    "base64-encoded (a third larger than the files); default 10000000",
}


# --- what production refuses, and what every request must respect -------------------------------


def _refuse_weak_secrets(env: Mapping[str, str], secret_key: str) -> None:
    """Production only: web/secret_strength.py's rules for SECRET_KEY and ADMIN_PASSWORD."""
    admin = _admin_settings(env)  # a mistake there (a username without a password) first
    problem = secret_key_problem(secret_key)
    if problem is None and admin["ADMIN_PASSWORD"]:
        problem = admin_password_problem(admin["ADMIN_USERNAME"], admin["ADMIN_PASSWORD"])
    if problem is not None:
        raise ConfigError(problem)


def _refuse_debugger(env: Mapping[str, str], config_name: str) -> None:
    """`flask run` with FLASK_DEBUG set (`--debug` sets it too) serves Werkzeug's debugger, which
    runs any Python its page is sent: allowed in development and testing only. Read as Flask
    reads it (flask.helpers.get_debug_flag): set and not 0, false or no."""
    raw = env.get("FLASK_DEBUG")
    if raw and raw.lower() not in ("0", "false", "no"):
        raise ConfigError(
            f"FLASK_DEBUG is on in the {config_name} configuration, where the debugger would "
            "run code sent by anyone who reaches it: unset FLASK_DEBUG, or use "
            "FLASKY_CONFIG=development"
        )


def _is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refuse_plaintext_auth(env: Mapping[str, str], *, encrypted: bool) -> None:
    """SMTP AUTH sends the password as it is (PLAIN and LOGIN are only base64): without
    STARTTLS or implicit TLS anyone on the way reads it. A server on this host, or an explicit
    MAIL_ALLOW_PLAINTEXT_AUTH=true (a relay on a network you trust), may have it in clear."""
    allowed = env_bool(env, "MAIL_ALLOW_PLAINTEXT_AUTH", False)
    if encrypted or allowed or not (env.get("MAIL_USERNAME") and env.get("MAIL_PASSWORD")):
        return
    if not _is_loopback(env.get("MAIL_SERVER", "localhost")):
        raise ConfigError(
            "MAIL_USERNAME and MAIL_PASSWORD are set without MAIL_USE_TLS or MAIL_USE_SSL: the "
            "password would cross the network in clear text; set MAIL_USE_TLS=true (STARTTLS, "
            "port 587) or MAIL_USE_SSL=true (port 465), or MAIL_ALLOW_PLAINTEXT_AUTH=true for a "
            "relay on a network you trust"
        )


# The largest request body. A form post is a few hundred bytes (a 64-character name is at most
# 768 bytes percent-encoded) and nothing is uploaded over HTTP (attachments come through the
# Python API): 64 KiB is room for any form, and all a worker ever reads of a request. Werkzeug
# refuses a larger Content-Length before reading the body, and stops a chunked one there.
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024
# multipart/form-data parts in one request: the largest form has about ten fields.
MAX_FORM_PARTS = 50
# The names production answers to when FLASKY_TRUSTED_HOSTS is unset: the compose stack's URLs
# and healthchecks, and nothing an attacker can send. (Werkzeug 3.1 cannot match [::1].)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
_HOST_NAME = re.compile(r"\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def env_trusted_hosts(env: Mapping[str, str], *, strict: bool) -> list[str] | None:
    """FLASKY_TRUSTED_HOSTS: the host names the site answers to, comma-separated (".example.com"
    takes its subdomains too, "*" any name; None is any name). A request for another Host is
    answered 400 (Flask's TRUSTED_HOSTS), so that no URL the app builds from the Host header (the
    redirect from /admin to /admin/, external links) can lead to another site. Unset: any name
    in development and testing; in production (`strict`) only LOOPBACK_HOSTS, so that a new
    deployment is safe before it is told its public name."""
    raw = env.get("FLASKY_TRUSTED_HOSTS", "").strip()
    if not raw:
        return list(LOOPBACK_HOSTS) if strict else None
    if raw == "*":
        return None
    hosts = [host.strip().lower() for host in raw.split(",") if host.strip()]
    for host in hosts:
        if not _HOST_NAME.fullmatch(host):
            raise ConfigError(
                "FLASKY_TRUSTED_HOSTS takes host names such as flasky.example.com, comma-separated "
                f"(no scheme, port or path; '*' alone for any), got {host!r}"
            )
    return hosts


def _request_settings(env: Mapping[str, str], *, strict: bool) -> dict[str, Any]:
    max_bytes = env_int(env, "FLASKY_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, minimum=1024)
    return {
        "MAX_CONTENT_LENGTH": max_bytes,
        "MAX_FORM_MEMORY_SIZE": max_bytes,
        "MAX_FORM_PARTS": MAX_FORM_PARTS,
        "TRUSTED_HOSTS": env_trusted_hosts(env, strict=strict),
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host/-Port it
        # believes (web/security.py); 0, the default: none, the headers are ignored.
        "FLASKY_PROXY_HOPS": env_int(env, "FLASKY_PROXY_HOPS", 0),
    }


class Config:
    """Settings shared by every environment. `load()` fills them from the environment."""

    NAME = "base"
    DEBUG = False
    TESTING = False
    DEV_SECRET_KEY = None
    # Production's rules, which development and testing leave out: no weak secrets, no
    # debugger, and only the trusted host names (localhost unless set) are answered.
    STRICT = True
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
        if cls.STRICT:
            _refuse_weak_secrets(env, secret_key)
            _refuse_debugger(env, cls.NAME)
        for old, new in _RENAMED.items():
            if env.get(old):
                raise ConfigError(f"{old} is now {new}: {_RENAMED_WHY[old]}")
        mail_use_tls = env_bool(env, "MAIL_USE_TLS", False)
        mail_use_ssl = env_bool(env, "MAIL_USE_SSL", False)
        if mail_use_tls and mail_use_ssl:
            raise ConfigError("MAIL_USE_TLS and MAIL_USE_SSL are exclusive: set only one")
        _refuse_plaintext_auth(env, encrypted=mail_use_tls or mail_use_ssl)
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
            "MAIL_DATA_TIMEOUT": env_float(env, "MAIL_DATA_TIMEOUT", 120.0, minimum=0.1),
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
            # The first wait after a greylisting reply that states no delay (worker/retry_delay.py).
            "FLASKY_GREYLIST_DELAY": env_float(env, "FLASKY_GREYLIST_DELAY", 300.0, minimum=0.0),
            "FLASKY_SWEEP_GRACE": env_float(env, "FLASKY_SWEEP_GRACE", 30.0, minimum=0.0),
            "FLASKY_SWEEP_QUEUE_TARGET": env_int(env, "FLASKY_SWEEP_QUEUE_TARGET", 5000, minimum=1),
            # Email ids per Celery message: one message, one claim for up to this many emails.
            "FLASKY_BATCH_SIZE": env_int(env, "FLASKY_BATCH_SIZE", 100, minimum=1),
            # SMTP sessions a worker process keeps open and sends on at the same time: what
            # lets one process keep up with a relay that takes a second per message.
            "FLASKY_SMTP_CONNECTIONS": env_int(env, "FLASKY_SMTP_CONNECTIONS", 8, minimum=1),
            # The largest message as sent, attachments base64-encoded (web/outbox/size.py):
            # under a stock Postfix's 10,240,000 bytes, with room for the relays' headers.
            "FLASKY_MAX_MESSAGE_BYTES": env_int(
                env, "FLASKY_MAX_MESSAGE_BYTES", 10_000_000, minimum=0
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
            "METRICS_TOKEN": env_metrics_token(env),
            **_admin_settings(env),
            **_queue_settings(env),
            **_request_settings(env, strict=cls.STRICT),
        }


class DevelopmentConfig(Config):
    NAME = "development"
    DEBUG = True
    DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - development only, never used elsewhere
    STRICT = False
    SESSION_COOKIE_SECURE = False  # http://127.0.0.1


class TestingConfig(Config):
    NAME = "testing"
    TESTING = True
    DEV_SECRET_KEY = "testing-only-not-secret"  # noqa: S105 - tests only
    STRICT = False
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
