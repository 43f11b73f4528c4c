"""The admin session's lifetime settings (web/config.py): defaults, limits, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from web.config import ConfigError, load_config


def test_a_working_day_at_most_and_an_hour_idle_by_default(tmp_path: Path) -> None:
    config = load_config("testing", {}, str(tmp_path))
    assert config["ADMIN_SESSION_LIFETIME"] == 12 * 3600
    assert config["ADMIN_SESSION_IDLE_TIMEOUT"] == 3600
    # Flask refuses a cookie signed longer ago: 12 hours, not its default 31 days.
    assert config["PERMANENT_SESSION_LIFETIME"] == 12 * 3600


def test_both_come_from_the_environment(tmp_path: Path) -> None:
    env = {"ADMIN_SESSION_LIFETIME": "28800", "ADMIN_SESSION_IDLE_TIMEOUT": "900"}
    config = load_config("testing", env, str(tmp_path))
    assert (config["ADMIN_SESSION_LIFETIME"], config["ADMIN_SESSION_IDLE_TIMEOUT"]) == (28800, 900)
    assert config["PERMANENT_SESSION_LIFETIME"] == 28800


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ADMIN_SESSION_LIFETIME": "3600", "ADMIN_SESSION_IDLE_TIMEOUT": "7200"},
            "ADMIN_SESSION_IDLE_TIMEOUT (7200) must be at most ADMIN_SESSION_LIFETIME (3600)",
        ),
        ({"ADMIN_SESSION_IDLE_TIMEOUT": "60"}, "ADMIN_SESSION_IDLE_TIMEOUT must be at least 300"),
        ({"ADMIN_SESSION_LIFETIME": "0"}, "ADMIN_SESSION_LIFETIME must be at least 300"),
        ({"ADMIN_SESSION_LIFETIME": "12h"}, "ADMIN_SESSION_LIFETIME must be a whole number"),
    ],
)
def test_bad_values_stop_start_up_with_one_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("testing", env, str(tmp_path))
