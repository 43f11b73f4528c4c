"""worker/retry_delay.py: the wait after a temporary failure, by what the server said."""

from __future__ import annotations

import random

import pytest

from worker.retry_delay import backoff_delay, is_greylisting, retry_delay, stated_delay

CONFIG = {
    "FLASKY_RETRY_BACKOFF_BASE": 30.0,
    "FLASKY_RETRY_BACKOFF_CAP": 3600.0,
    "FLASKY_GREYLIST_DELAY": 300.0,
}
POSTGREY = (
    "450 4.2.0 <ada@example.com>: Recipient address rejected: Greylisted, "
    "see http://postgrey.schweikert.ch/help/example.com.html"
)


def test_backoff_doubles_up_to_the_cap_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    assert [backoff_delay(n, 30, 3600) for n in range(1, 9)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
    ]
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    assert backoff_delay(1, 30, 3600) == 15  # at least half of the ceiling
    assert backoff_delay(0, 30, 3600) == 15


@pytest.mark.parametrize(
    ("reply", "seconds"),
    [
        ("450 4.2.0 Greylisted for 300 seconds", 300),  # postgrey --greylist-text with %s
        ("451 4.7.1 Greylisting in action, please come back in 5 minutes", 300),
        ("451 4.7.1 Please try again after 60s", 60),
        ("421 4.7.0 Too many connections, wait 2 min", 120),
        ("450 try again in 1 hour", 3600),
        ("452 4.5.3 Too many recipients in 1 message", None),  # a number, but not a time
        ("451 4.3.0 Temporary local problem - please try later", None),
        (POSTGREY, None),
    ],
)
def test_a_delay_the_server_states_is_read(reply: str, seconds: float | None) -> None:
    assert stated_delay(reply) == seconds


@pytest.mark.parametrize(
    ("reply", "greylisting"),
    [
        (POSTGREY, True),
        ("451 4.7.1 Greylisting in action", True),
        ("450 4.7.1 graylisted, retry later", True),
        ("451 4.7.1 grey-listed", True),
        ("451 4.3.0 Temporary local problem", False),
        ("421 4.4.2 Connection dropped", False),
    ],
)
def test_greylisting_is_recognised_by_its_name(reply: str, greylisting: bool) -> None:
    assert is_greylisting(reply) is greylisting


def test_a_stated_delay_is_kept_never_shortened_and_capped() -> None:
    waits = [retry_delay("450 4.2.0 Greylisted for 45 seconds", 1, CONFIG) for _ in range(200)]
    assert min(waits) >= 45 and max(waits) <= 45 * 1.1
    assert retry_delay("450 try again in 9 hours", 1, CONFIG) <= 3600 * 1.1


def test_greylisting_without_a_delay_waits_as_long_as_common_greylists() -> None:
    waits = [retry_delay(POSTGREY, 1, CONFIG) for _ in range(200)]
    assert min(waits) >= 300 and max(waits) <= 330


def test_a_busy_servers_451_is_still_retried_quickly() -> None:
    waits = [retry_delay("451 4.3.0 Temporary local problem", 1, CONFIG) for _ in range(200)]
    assert min(waits) >= 15 and max(waits) <= 30
