"""METRICS_TOKEN (web/config.py): unset means the admin's session alone reads /metrics; a token
must be one a bearer header can carry and nobody can guess, or start-up names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from web.config import ConfigError, load_config

GOOD = "Zr8-qK2_vX9.wL4~mN7+pB5/tY3=="


def metrics_token(tmp_path: Path, **env: str) -> str | None:
    config = load_config("production", {"SECRET_KEY": "k" * 32, **env}, str(tmp_path))
    return config["METRICS_TOKEN"]


def test_unset_or_empty_means_no_token(tmp_path: Path) -> None:
    assert metrics_token(tmp_path) is None
    assert metrics_token(tmp_path, METRICS_TOKEN="") is None


def test_a_token_is_read_from_the_environment(tmp_path: Path) -> None:
    assert metrics_token(tmp_path, METRICS_TOKEN=GOOD) == GOOD


@pytest.mark.parametrize(
    "token",
    ["short-token", "has a space in it ok?", "ünïcode-ünïcode-ünïcode", 'quote"quote"quote"q'],
    ids=["too-short", "space", "non-ascii", "quote"],
)
def test_a_bad_token_stops_start_up_with_one_line(tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError) as error:
        metrics_token(tmp_path, METRICS_TOKEN=token)
    message = str(error.value)
    assert message.startswith("METRICS_TOKEN must be at least 16 characters")
    assert "secrets.token_urlsafe" in message and "\n" not in message
    assert token not in message  # a secret is never repeated
