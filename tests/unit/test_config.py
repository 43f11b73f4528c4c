"""web/config.py: settings from the environment, their defaults, and one clear error per mistake.

Start-up as a person sees it (`flask` and `celery` commands exiting with one line) is in
tests/integration/test_config.py: those tests run subprocesses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from celeryconfig import celery_settings
from web.config import ConfigError, check_wait_chain, env_bool, env_float, env_int, load_config

# A SECRET_KEY that production accepts (web/secret_strength.py): 32 characters, no placeholder.
KEY = "production-key-for-the-tests-0123456789"


def test_defaults_use_sqlite_in_the_instance_folder_and_the_local_redis(tmp_path: Path) -> None:
    config = load_config("production", {"SECRET_KEY": KEY}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/flasky.sqlite"
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert config["MAIL_PORT"] == 25 and config["MAIL_USE_TLS"] is False
    assert config["FLASKY_MAIL_SUBJECT_PREFIX"] == "[Flasky]"
    assert config["FLASKY_ADMIN"] is None


def test_the_books_gmail_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    env = {
        "SECRET_KEY": KEY,
        "MAIL_SERVER": "smtp.googlemail.com",
        "MAIL_PORT": "587",
        "MAIL_USE_TLS": "true",
        "MAIL_USERNAME": "me@gmail.com",
        "MAIL_PASSWORD": "app-password",
        "DATABASE_URL": "postgres://u@db/flasky",
    }
    config = load_config("production", env, str(tmp_path))
    assert (config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_USE_TLS"]) == (
        "smtp.googlemail.com",
        587,
        True,
    )
    assert config["MAIL_USERNAME"] == "me@gmail.com" and config["MAIL_PASSWORD"] == "app-password"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/flasky"


def test_tls_and_ssl_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAIL_USE_TLS and MAIL_USE_SSL"):
        load_config("testing", {"MAIL_USE_TLS": "1", "MAIL_USE_SSL": "1"}, str(tmp_path))


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAIL_CA_FILE"):
        load_config("testing", {"MAIL_CA_FILE": str(tmp_path / "nope.pem")}, str(tmp_path))


def test_implicit_tls_defaults_to_port_465(tmp_path: Path) -> None:
    config = load_config("testing", {"MAIL_USE_SSL": "yes"}, str(tmp_path))
    assert config["MAIL_PORT"] == 465 and config["MAIL_USE_SSL"] is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY is required in the production configuration"),
        ({"SECRET_KEY": KEY, "MAIL_PORT": "smtp"}, "MAIL_PORT must be a whole number, got 'smtp'"),
        ({"SECRET_KEY": KEY, "MAIL_PORT": "70000"}, "MAIL_PORT must be a TCP port"),
        ({"SECRET_KEY": KEY, "MAIL_PORT": "0"}, "MAIL_PORT must be at least 1, got 0"),
        ({"SECRET_KEY": KEY, "MAIL_USE_TLS": "maybe"}, "MAIL_USE_TLS must be true or false"),
        ({"SECRET_KEY": KEY, "MAIL_TIMEOUT": "soon"}, "MAIL_TIMEOUT must be a number"),
        ({"SECRET_KEY": KEY, "FLASKY_ADMIN": "not an address"}, "FLASKY_ADMIN: not a valid"),
        ({"SECRET_KEY": KEY, "FLASKY_MAIL_SENDER": ""}, "FLASKY_MAIL_SENDER is required"),
        (
            {"SECRET_KEY": KEY, "FLASKY_RETRY_BACKOFF_BASE": "60", "FLASKY_RETRY_BACKOFF_CAP": "5"},
            "FLASKY_RETRY_BACKOFF_CAP must be at least FLASKY_RETRY_BACKOFF_BASE",
        ),
        ({"SECRET_KEY": KEY, "FLASKY_FORM_RATE_LIMIT": "lots"}, "FLASKY_FORM_RATE_LIMIT must be"),
        ({"SECRET_KEY": KEY, "FLASKY_LEASE_SECONDS": "0"}, "FLASKY_LEASE_SECONDS must be at least"),
        ({"SECRET_KEY": KEY, "FLASKY_CONFIG": "staging"}, "FLASKY_CONFIG must be one of"),
    ],
)
def test_a_bad_value_is_refused_with_a_message_naming_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(None, env, str(tmp_path))


def test_the_readers_take_a_blank_number_as_the_default_and_a_blank_flag_as_false() -> None:
    env = {"N": " ", "F": "", "B": ""}
    assert env_int(env, "N", 7) == 7 and env_float(env, "F", 0.5) == 0.5
    assert env_bool(env, "B", True) is False
    assert env_bool({"B": " On "}, "B", False) is True


def _with_celery(tmp_path: Path, **env: str) -> dict[str, object]:
    """The final configuration as create_app builds it: loaded, then the Celery settings."""
    config = load_config("testing", env, str(tmp_path))
    config["CELERY"] = celery_settings(config)
    return config


def test_the_old_attachment_limit_is_refused_naming_the_new_one(tmp_path: Path) -> None:
    env = {"SECRET_KEY": KEY, "FLASKY_MAX_ATTACHMENT_BYTES": "5000000"}
    with pytest.raises(ConfigError, match="^FLASKY_MAX_ATTACHMENT_BYTES is now FLASKY_MAX_MES"):
        load_config("testing", env, str(tmp_path))


def test_the_default_waits_sit_inside_each_other(tmp_path: Path) -> None:
    check_wait_chain(_with_celery(tmp_path))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAIL_TIMEOUT": "30"}, "MAIL_TIMEOUT (30.0) must be less than CELERY_TASK_SOFT_TIME"),
        ({"CELERY_TASK_TIME_LIMIT": "10"}, "CELERY_TASK_SOFT_TIME_LIMIT (30) must be less than"),
        ({"CELERY_TASK_TIME_LIMIT": "300"}, "CELERY_TASK_TIME_LIMIT (300) must be less than FLAS"),
        ({"CELERY_VISIBILITY_TIMEOUT": "240"}, "FLASKY_LEASE_SECONDS (240) must be less than CEL"),
        ({"MAIL_DATA_TIMEOUT": "5"}, "MAIL_DATA_TIMEOUT (5.0) must be at least MAIL_TIMEOUT (10"),
        (
            {"MAIL_DATA_TIMEOUT": "156"},
            "MAIL_DATA_TIMEOUT (156.0) plus 80% of CELERY_TASK_SOFT_TIME_LIMIT (24) must be less "
            "than CELERY_TASK_TIME_LIMIT (180)",
        ),
        (
            {"FLASKY_MAX_COUNTDOWN": "600"},
            "FLASKY_MAX_COUNTDOWN (600) must be less than CELERY_VISIBILITY_TIMEOUT (600)",
        ),
    ],
)
def test_a_broken_wait_chain_is_refused_naming_both_ends(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_wait_chain(_with_celery(tmp_path, **env))


# --- the admin area's settings --------------------------------------------------------------


def test_production_and_development_cookie_settings(tmp_path: Path) -> None:
    production = load_config("production", {"SECRET_KEY": KEY}, str(tmp_path))
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert production["ADMIN_USERNAME"] is None  # production needs no admin to start
    assert load_config("development", {}, str(tmp_path))["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ADMIN_USERNAME": "ops"}, "ADMIN_USERNAME"),
        ({"ADMIN_PASSWORD": "pw-s3cr3t"}, "ADMIN_USERNAME"),
        (
            {"ADMIN_USERNAME": "ops", "ADMIN_PASSWORD": "pw-s3cr3t", "ADMIN_PASSWORD_HASH": "h"},
            "exclusive",
        ),
        ({"ADMIN_USERNAME": "ops", "ADMIN_PASSWORD_HASH": "pw-s3cr3t"}, "ADMIN_PASSWORD_HASH"),
        ({"ADMIN_USERNAME": "ops", "ADMIN_PASSWORD_HASH": "md5$x$pw-s3cr3t"}, "werkzeug"),
        ({"ADMIN_LOGIN_RATE_LIMIT": "often"}, "ADMIN_LOGIN_RATE_LIMIT"),
    ],
)
def test_bad_admin_settings_stop_start_up(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable) as error:
        load_config("production", {"SECRET_KEY": KEY, **env}, str(tmp_path))
    assert "s3cr3t" not in str(error.value)  # a password is never repeated, not even a bad one


def test_admin_settings_from_the_environment(tmp_path: Path) -> None:
    password_hash = generate_password_hash("pw")
    env = {
        "SECRET_KEY": KEY,
        "ADMIN_USERNAME": "ops",
        "ADMIN_PASSWORD_HASH": password_hash,
        "ADMIN_LOGIN_RATE_LIMIT": "3 per hour",
        "REDIS_URL": "redis://redis:6379/0",
    }
    config = load_config("production", env, str(tmp_path))
    assert config["ADMIN_USERNAME"] == "ops" and config["ADMIN_PASSWORD_HASH"] == password_hash
    assert config["ADMIN_LOGIN_RATE_LIMIT"] == "3 per hour"
    assert config["RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0"


# --- the database and Redis URLs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:pw@db/flasky", "postgresql+psycopg://u:pw@db/flasky"),
        ("postgresql://u:pw@db:5433/flasky", "postgresql+psycopg://u:pw@db:5433/flasky"),
        ("postgresql+psycopg://u@db/flasky", "postgresql+psycopg://u@db/flasky"),
        ("sqlite://", "sqlite://"),  # in memory
        ("sqlite:///relative.sqlite", "sqlite:///relative.sqlite"),
    ],
)
def test_sqlite_and_postgresql_urls_are_taken(tmp_path: Path, url: str, expected: str) -> None:
    config = load_config("testing", {"DATABASE_URL": url}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == expected


def test_a_sqlite_file_may_be_in_the_instance_folder_before_it_exists(tmp_path: Path) -> None:
    instance = tmp_path / "instance"  # create_app makes it after loading the configuration
    url = f"sqlite:///{instance}/flasky.sqlite"
    config = load_config("testing", {"DATABASE_URL": url}, str(instance))
    assert config["SQLALCHEMY_DATABASE_URI"] == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://bar", "DATABASE_URL: flasky supports SQLite (sqlite:////path/to/flasky.sqlite) "
         "and PostgreSQL (postgresql://user:password@host/db), not 'foo'"),
        ("mysql://u:s3cr3t@db/flasky", "DATABASE_URL: flasky supports SQLite"),
        ("mysql+pymysql://u:s3cr3t@db/flasky", "not 'mysql'"),
        ("s3cr3t", "DATABASE_URL is not a database URL; flasky supports SQLite"),
        ("postgresql+psycopg2://u:s3cr3t@db/flasky",
         "DATABASE_URL: flasky reaches PostgreSQL through psycopg 3, not 'psycopg2': "
         "write postgresql://user:password@host/db"),
        ("postgresql+asyncpg://u:s3cr3t@db/flasky", "not 'asyncpg'"),
        ("sqlite+aiosqlite:///x.sqlite", "DATABASE_URL: flasky reaches SQLite through Python's "
         "sqlite3, not 'aiosqlite'"),
        ("sqlite:////no/such/folder/flasky.sqlite",
         "DATABASE_URL: the SQLite file's folder does not exist: /no/such/folder"),
    ],
)  # fmt: skip
def test_an_unsupported_database_url_is_refused_without_repeating_it(
    tmp_path: Path, url: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config("testing", {"DATABASE_URL": url}, str(tmp_path))
    assert message in str(error.value)
    assert "s3cr3t" not in str(error.value)  # a URL may hold a password: never repeated


@pytest.mark.parametrize("url", ["redis://redis:6379/2", "rediss://:pw@cache.example.com:6380"])
def test_redis_and_rediss_urls_are_taken(tmp_path: Path, url: str) -> None:
    config = load_config("testing", {"REDIS_URL": url}, str(tmp_path))
    assert config["REDIS_URL"] == url == config["RATELIMIT_STORAGE_URI"]
    assert celery_settings(config)["broker_url"] == url


def test_an_empty_redis_url_is_the_default(tmp_path: Path) -> None:
    config = load_config("testing", {"REDIS_URL": ""}, str(tmp_path))
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://x", "REDIS_URL must be a redis:// or rediss:// URL such as "
         "redis://127.0.0.1:6379/0 (Unix sockets are not supported), got http://"),
        ("unix:///run/redis.sock", "got unix://"),
        ("redis+socket:///run/redis.sock", "got redis+socket://"),
        ("localhost:6379", "got no scheme"),
        ("redis://:s3cr3t@redis:port/0", "REDIS_URL: the port is not a number from 1 to 65535"),
        ("redis://:s3cr3t@redis:6379/zero", "REDIS_URL: the path must be a database number "
         "such as /0, got /zero"),
    ],
)  # fmt: skip
def test_a_bad_redis_url_is_refused_naming_the_variable(
    tmp_path: Path, url: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config("testing", {"REDIS_URL": url}, str(tmp_path))
    assert message in str(error.value)
    assert "s3cr3t" not in str(error.value)


def test_the_rate_limit_storage_may_be_set_apart_and_is_checked(tmp_path: Path) -> None:
    env = {"RATELIMIT_STORAGE_URI": "memory://"}
    assert load_config("testing", env, str(tmp_path))["RATELIMIT_STORAGE_URI"] == "memory://"
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI must be a redis://, rediss://"):
        load_config("testing", {"RATELIMIT_STORAGE_URI": "mongodb://x"}, str(tmp_path))


# --- FLASKY_CONFIG and the book's FLASK_CONFIG -------------------------------------------------


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "production"),
        ({"FLASKY_CONFIG": "development"}, "development"),
        ({"FLASK_CONFIG": "development"}, "development"),  # the book's variable
        ({"FLASK_CONFIG": "testing", "FLASKY_CONFIG": "testing"}, "testing"),
        ({"FLASK_CONFIG": "", "FLASKY_CONFIG": "testing"}, "testing"),
    ],
)
def test_the_configuration_is_named_by_flasky_config_or_the_books_flask_config(
    tmp_path: Path, env: dict[str, str], name: str
) -> None:
    assert load_config(None, {"SECRET_KEY": KEY, **env}, str(tmp_path))["CONFIG_NAME"] == name


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FLASKY_CONFIG": "testing", "FLASK_CONFIG": "production"},
            "FLASKY_CONFIG is 'testing' but FLASK_CONFIG is 'production': unset FLASK_CONFIG "
            "(the book's name for FLASKY_CONFIG) or give both the same value",
        ),
        (
            {"FLASK_CONFIG": "default"},
            "FLASK_CONFIG must be one of development, production, testing, got 'default' "
            "(the book's 'default' is development)",
        ),
        ({"FLASK_CONFIG": "staging"}, "FLASK_CONFIG must be one of"),
    ],
)
def test_a_bad_or_contradicted_flask_config_is_refused(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, env, str(tmp_path))
    assert str(error.value).startswith(message)


def test_a_name_given_by_the_caller_wins_over_the_environment(tmp_path: Path) -> None:
    env = {"FLASKY_CONFIG": "production", "FLASK_CONFIG": "development"}
    assert load_config("testing", env, str(tmp_path))["CONFIG_NAME"] == "testing"


def test_the_workers_wait_for_the_migrations_is_read(tmp_path: Path) -> None:
    assert load_config("testing", {}, str(tmp_path))["FLASKY_MIGRATION_WAIT"] == 60.0
    env = {"FLASKY_MIGRATION_WAIT": "0"}
    assert load_config("testing", env, str(tmp_path))["FLASKY_MIGRATION_WAIT"] == 0.0
