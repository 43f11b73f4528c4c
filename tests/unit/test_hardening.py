"""The rules behind issue 14's security points, one by one: what production refuses at start-up
(weak secrets, clear-text mail passwords, the debugger), the request settings, no-store, and the
compose stack's Flower kept off the network. tests/integration/test_hardening.py replays the
probe itself against gunicorn and Redis."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml
from werkzeug.security import generate_password_hash

from tests.unit.conftest import make_app
from web.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
KEY = secrets.token_hex()


def _production(tmp_path: Path, **env: str) -> dict[str, object]:
    return load_config("production", {"SECRET_KEY": KEY, **env}, str(tmp_path))


# --- 3. secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("change-me", "is a placeholder"),
        ("hard to guess string", "is a placeholder"),  # the Flask book's
        ("please-CHANGE_ME-before-you-deploy-this-0123456789", "is a placeholder"),
        ("x", "is too short: production needs at least 32 characters, it has 1"),
        ("k" * 31, "is too short: .* it has 31"),
    ],
)
def test_production_refuses_a_placeholder_or_short_secret_key(
    tmp_path: Path, key: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match=f"^SECRET_KEY {reason}") as error:
        load_config("production", {"SECRET_KEY": key}, str(tmp_path))
    assert "\n" not in str(error.value) and "secrets.token_hex()" in str(error.value)
    if len(key) > 1:
        assert key not in str(error.value)


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("admin", "admin", "is shorter than 12 characters"),
        ("ops", "s3cret-pw!", "is shorter than 12 characters"),
        ("operator-in-chief", "Operator-In-Chief", "is the username"),
        ("ops", "password1234", "is one of the most common passwords"),
        ("ops", "Administrator", "is one of the most common passwords"),
        ("ops", "change-me-please-now", "is a placeholder"),
    ],
)
def test_production_refuses_a_weak_admin_password(
    tmp_path: Path, username: str, password: str, reason: str
) -> None:
    env = {"ADMIN_USERNAME": username, "ADMIN_PASSWORD": password}
    with pytest.raises(ConfigError, match=f"^ADMIN_PASSWORD {reason}") as error:
        _production(tmp_path, **env)
    assert password not in str(error.value)


def test_a_strong_password_and_any_hash_pass(tmp_path: Path) -> None:
    """A hash cannot be checked: it does not tell how strong its password is (docs say so)."""
    strong = {"ADMIN_USERNAME": "ops", "ADMIN_PASSWORD": "correct horse battery staple"}
    assert _production(tmp_path, **strong)["ADMIN_PASSWORD"] == strong["ADMIN_PASSWORD"]
    weak_hash = {"ADMIN_USERNAME": "admin", "ADMIN_PASSWORD_HASH": generate_password_hash("admin")}
    assert _production(tmp_path, **weak_hash)["ADMIN_PASSWORD_HASH"]


@pytest.mark.parametrize("name", ["development", "testing"])
def test_development_and_testing_keep_their_short_keys_and_passwords(
    tmp_path: Path, name: str
) -> None:
    assert load_config(name, {}, str(tmp_path))["SECRET_KEY"].endswith("-only-not-secret")
    env = {"SECRET_KEY": "x", "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD": "admin"}
    assert load_config(name, env, str(tmp_path))["ADMIN_PASSWORD"] == "admin"


# --- 4. SMTP credentials only over TLS ----------------------------------------------------------

CREDENTIALS = {"MAIL_USERNAME": "flasky", "MAIL_PASSWORD": "relay-password"}


@pytest.mark.parametrize("name", ["production", "testing"])
def test_credentials_without_tls_to_another_host_are_refused(tmp_path: Path, name: str) -> None:
    env = {"SECRET_KEY": KEY, "MAIL_SERVER": "smtp.example.com", **CREDENTIALS}
    with pytest.raises(ConfigError, match="^MAIL_USERNAME and MAIL_PASSWORD are set without"):
        load_config(name, env, str(tmp_path))


@pytest.mark.parametrize(
    "env",
    [
        {"MAIL_SERVER": "smtp.example.com", "MAIL_USE_TLS": "true"},
        {"MAIL_SERVER": "smtp.example.com", "MAIL_USE_SSL": "true"},
        {"MAIL_SERVER": "smtp.example.com", "MAIL_ALLOW_PLAINTEXT_AUTH": "true"},
        {"MAIL_SERVER": "localhost"},
        {},  # MAIL_SERVER's default: localhost
        {"MAIL_SERVER": "127.0.0.1"},
        {"MAIL_SERVER": "127.0.0.53"},
        {"MAIL_SERVER": "::1"},
        {"MAIL_SERVER": "[::1]"},
    ],
)
def test_credentials_go_over_tls_to_loopback_or_with_the_opt_in(
    tmp_path: Path, env: dict[str, str]
) -> None:
    assert _production(tmp_path, **CREDENTIALS, **env)["MAIL_PASSWORD"] == "relay-password"


def test_without_a_password_nothing_crosses_and_nothing_is_refused(tmp_path: Path) -> None:
    assert _production(tmp_path, MAIL_SERVER="smtp.example.com", MAIL_USERNAME="flasky")


# --- 1, 5. request settings -----------------------------------------------------------------


def test_the_request_settings_and_their_defaults(tmp_path: Path) -> None:
    production = _production(tmp_path)
    assert production["MAX_CONTENT_LENGTH"] == production["MAX_FORM_MEMORY_SIZE"] == 64 * 1024
    assert production["TRUSTED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert production["FLASKY_PROXY_HOPS"] == 0
    testing = load_config("testing", {}, str(tmp_path))
    assert testing["TRUSTED_HOSTS"] is None  # any name: test clients, dev servers on the LAN
    assert testing["MAX_CONTENT_LENGTH"] == 64 * 1024
    custom = _production(
        tmp_path,
        FLASKY_TRUSTED_HOSTS=" Flasky.example.com, .example.org ",
        FLASKY_PROXY_HOPS="2",
        FLASKY_MAX_REQUEST_BYTES="1048576",
    )
    assert custom["TRUSTED_HOSTS"] == ["flasky.example.com", ".example.org"]
    assert (custom["FLASKY_PROXY_HOPS"], custom["MAX_CONTENT_LENGTH"]) == (2, 1048576)
    assert _production(tmp_path, FLASKY_TRUSTED_HOSTS="*")["TRUSTED_HOSTS"] is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLASKY_TRUSTED_HOSTS": "https://flasky.example.com"}, "FLASKY_TRUSTED_HOSTS takes"),
        ({"FLASKY_TRUSTED_HOSTS": "flasky.example.com:443"}, "FLASKY_TRUSTED_HOSTS takes"),
        ({"FLASKY_TRUSTED_HOSTS": "*, flasky.example.com"}, "FLASKY_TRUSTED_HOSTS takes"),
        ({"FLASKY_PROXY_HOPS": "one"}, "FLASKY_PROXY_HOPS must be a whole number"),
        ({"FLASKY_MAX_REQUEST_BYTES": "100"}, "FLASKY_MAX_REQUEST_BYTES must be at least 1024"),
    ],
)
def test_bad_request_settings_are_refused(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        _production(tmp_path, **env)


# --- 8c, 8d. no-store and the debugger -------------------------------------------------------


def test_the_caught_mail_is_never_stored_by_the_browser(tmp_path: Path) -> None:
    client = make_app("development", DEV_SMTP_MAILDIR=str(tmp_path)).test_client()
    response = client.get("/dev/inbox/")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("value", ["1", "true", "yes", "on"])
def test_production_refuses_flask_debug(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="^FLASK_DEBUG is on in the production configuration"):
        _production(tmp_path, FLASK_DEBUG=value)


@pytest.mark.parametrize(("name", "value"), [("production", "0"), ("production", "false")])
def test_debug_off_is_accepted_in_production(tmp_path: Path, name: str, value: str) -> None:
    assert load_config(name, {"SECRET_KEY": KEY, "FLASK_DEBUG": value}, str(tmp_path))


@pytest.mark.parametrize("name", ["development", "testing"])
def test_development_and_testing_may_debug(tmp_path: Path, name: str) -> None:
    assert load_config(name, {"FLASK_DEBUG": "1"}, str(tmp_path))


# --- 8e. Flower off the network ---------------------------------------------------------------


def test_flower_is_published_on_loopback_only_and_the_docs_say_how_to_reach_it() -> None:
    """Flower's /metrics needs no login and its basic auth has no attempt limit: compose
    publishes it (and Mailpit's inbox) on 127.0.0.1, and the docs say how to reach it."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("flower", "mailpit"):
        (published,) = services[name]["ports"]
        assert published.startswith("127.0.0.1:"), (name, published)
    for doc in ("security.md", "operations.md"):
        text = (ROOT / "docs" / doc).read_text()
        assert "Flower's `/metrics`" in text and "ssh -L" in text, doc
