"""The development admin login (devtools/dev_admin.py, dev.py's build_env): made once per
instance folder, a hash werkzeug verifies, the environment's choice first, and refused by
every configuration but development."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest
from werkzeug.security import check_password_hash, generate_password_hash

import dev
from devtools import dev_admin
from tests.forms import csrf_token
from tests.unit.conftest import make_app
from web.admin import auth


@pytest.fixture
def login(tmp_path: Path) -> dev_admin.DevAdmin:
    return dev_admin.dev_admin(tmp_path)


def test_the_hash_is_one_werkzeug_verifies(login: dev_admin.DevAdmin) -> None:
    assert login.username == "dev"
    assert check_password_hash(login.password_hash, login.password)
    assert not check_password_hash(login.password_hash, login.password + "x")
    assert login.password not in login.password_hash


def test_the_login_is_made_once_per_instance_and_kept_private(tmp_path: Path) -> None:
    first = dev_admin.dev_admin(tmp_path / "one")
    assert dev_admin.dev_admin(tmp_path / "one") == first  # a restart keeps it (and sessions)
    assert dev_admin.dev_admin(tmp_path / "two").password != first.password
    mode = (tmp_path / "one" / dev_admin.FILE_NAME).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert [p.name for p in (tmp_path / "one").iterdir()] == [dev_admin.FILE_NAME]


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"username": "dev"}',
        '{"username": "dev", "password": "p", "password_hash": "scrypt:1:1:1$othersalt$00"}',
    ],
)
def test_an_unusable_file_is_replaced(tmp_path: Path, content: str) -> None:
    (tmp_path / dev_admin.FILE_NAME).write_text(content)
    login = dev_admin.dev_admin(tmp_path)
    assert check_password_hash(login.password_hash, login.password)
    assert dev_admin.read_dev_admin(tmp_path) == login


def test_the_app_and_the_tool_agree_on_the_marker(login: dev_admin.DevAdmin) -> None:
    assert auth.DEV_SALT_PREFIX == dev_admin.DEV_SALT_PREFIX
    assert auth.is_dev_hash(login.password_hash) and dev_admin.is_dev_hash(login.password_hash)
    werkzeug_hash = generate_password_hash("a password")
    assert not auth.is_dev_hash(werkzeug_hash) and not dev_admin.is_dev_hash(werkzeug_hash)


def test_settings_in_development_without_an_admin_of_ones_own(tmp_path: Path) -> None:
    login = dev_admin.dev_admin(tmp_path)
    expected = {"ADMIN_USERNAME": "dev", "ADMIN_PASSWORD_HASH": login.password_hash}
    assert dev_admin.dev_admin_settings(tmp_path, {}) == expected
    assert dev_admin.dev_admin_settings(tmp_path, {"FLASKY_CONFIG": "development"}) == expected


@pytest.mark.parametrize(
    "environ",
    [
        {"FLASKY_CONFIG": "production"},
        {"FLASKY_CONFIG": "testing"},
        {"ADMIN_USERNAME": "me", "ADMIN_PASSWORD": "mine"},
        {"ADMIN_PASSWORD_HASH": "scrypt:..."},
        {"ADMIN_USERNAME": ""},  # the developer's way to have no login at all
    ],
)
def test_no_settings_when_the_environment_decides(tmp_path: Path, environ: dict) -> None:
    assert dev_admin.dev_admin_settings(tmp_path, environ) == {}
    assert not (tmp_path / dev_admin.FILE_NAME).exists()


# --- dev.py ----------------------------------------------------------------------------------

ADMIN_VARIABLES = ("FLASKY_CONFIG", *dev_admin.ADMIN_VARIABLES, "DEV_SMTP_MAILDIR")


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ADMIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def build_env(instance: Path) -> dict[str, str]:
    return dev.build_env(argparse.Namespace(smtp_port=1025), instance)


def test_dev_py_sets_and_prints_the_development_login(
    tmp_path: Path, clean_environ: pytest.MonkeyPatch
) -> None:
    env = build_env(tmp_path)
    login = dev_admin.read_dev_admin(tmp_path)
    assert login is not None
    assert env["ADMIN_USERNAME"] == "dev" and env["ADMIN_PASSWORD_HASH"] == login.password_hash
    assert "ADMIN_PASSWORD" not in env  # the password itself stays in the instance folder
    assert dev.admin_login(env, tmp_path) == f"login: dev / {login.password}"
    assert env["DEV_SMTP_MAILDIR"] == str(tmp_path / "mail")


def test_dev_py_leaves_the_admin_to_the_environment(
    tmp_path: Path, clean_environ: pytest.MonkeyPatch
) -> None:
    clean_environ.setenv("ADMIN_USERNAME", "me")
    clean_environ.setenv("ADMIN_PASSWORD", "my own")
    clean_environ.setenv("DEV_SMTP_MAILDIR", "/elsewhere")  # the catcher writes <instance>/mail
    env = build_env(tmp_path)
    assert (env["ADMIN_USERNAME"], env["ADMIN_PASSWORD"]) == ("me", "my own")
    assert "ADMIN_PASSWORD_HASH" not in env
    assert dev.admin_login(env, tmp_path) == "login: me (ADMIN_USERNAME from your environment)"
    assert env["DEV_SMTP_MAILDIR"] == str(tmp_path / "mail")


def test_dev_py_sets_no_login_for_another_configuration(
    tmp_path: Path, clean_environ: pytest.MonkeyPatch
) -> None:
    clean_environ.setenv("FLASKY_CONFIG", "production")
    env = build_env(tmp_path)
    assert "ADMIN_USERNAME" not in env and "ADMIN_PASSWORD_HASH" not in env
    assert dev.admin_login(env, tmp_path) == "no development login (FLASKY_CONFIG=production)"


# --- the app ---------------------------------------------------------------------------------


def _app(config_name: str, login: dev_admin.DevAdmin, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SECRET_KEY", "a-production-key-for-the-tests-0123")
    return make_app(
        config_name,
        ADMIN_USERNAME=login.username,
        ADMIN_PASSWORD_HASH=login.password_hash,
        SESSION_COOKIE_SECURE=False,  # the test client speaks plain HTTP
    )


def _log_in(client, login: dev_admin.DevAdmin):
    token = csrf_token(client, "/")  # the name form's: the same session token
    data = {"username": login.username, "password": login.password, "csrf_token": token}
    return client.post("/admin/login", data=data)


def test_development_accepts_the_development_login(
    login: dev_admin.DevAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _app("development", login, monkeypatch).test_client()
    response = _log_in(client, login)
    assert response.status_code == 302 and response.location == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("config_name", ["production", "testing"])
def test_other_configurations_refuse_the_development_login(
    config_name: str, login: dev_admin.DevAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(config_name, login, monkeypatch)
    with app.test_request_context():
        assert not auth.is_configured()
        assert not auth.check_credentials(login.username, login.password)
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    assert "the development login made by <code>dev.py</code>" in page
    assert "<form" not in page and "Wrong username or password" not in page
    response = _log_in(client, login)
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302  # still anonymous
