"""How long an email waits after a temporary failure before its next attempt.

- The server said how long ("try again in 5 minutes", postgrey's "Greylisted for 300
  seconds"): that long, and a little more, never less (capped by FLASKY_RETRY_BACKOFF_CAP).
- The server is greylisting and said nothing: at least FLASKY_GREYLIST_DELAY (default 300 s,
  the delay of postgrey and of most greylists, and Postfix's own first retry). A retry before
  the greylist's delay is greylisted again, and its wait doubles: with a 20 s greylist and
  15-30 s first waits, one email in four took 77 s instead of about 22 s.
- Anything else (a busy server's 451, a timeout, a dropped connection): exponential backoff
  with jitter from FLASKY_RETRY_BACKOFF_BASE, so that a passing problem costs seconds.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# "in 300 seconds", "after 5 min", "for 60s", "wait 2 minutes": a number and a unit of time.
_STATED_DELAY = re.compile(
    r"\b(?:in|after|for|wait)\s+(\d{1,6})\s*(s|secs?|seconds?|m|mins?|minutes?|h|hours?)\b",
    re.IGNORECASE,
)
_GREYLISTING = re.compile(r"\bgr[ae]y-?\s?list", re.IGNORECASE)
# A wait the server asked for is kept, never shortened: jitter only adds to it.
_JITTER_ABOVE = 0.1


def stated_delay(reply: str) -> float | None:
    """The delay, in seconds, that a server's reply asks for, if it states one."""
    match = _STATED_DELAY.search(reply)
    if match is None:
        return None
    number, unit = match.groups()
    return float(number) * _UNIT_SECONDS[unit[0].lower()]


def is_greylisting(reply: str) -> bool:
    return _GREYLISTING.search(reply) is not None


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base * 2^(n-1))."""
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return ceiling * random.uniform(0.5, 1.0)


def retry_delay(reply: str, attempts: int, config: Mapping[str, Any]) -> float:
    """Seconds to wait after attempt number `attempts` failed with `reply` (transient)."""
    cap = config["FLASKY_RETRY_BACKOFF_CAP"]
    stated = stated_delay(reply)
    if stated is not None:
        return min(stated, cap) * random.uniform(1.0, 1.0 + _JITTER_ABOVE)
    backoff = backoff_delay(attempts, config["FLASKY_RETRY_BACKOFF_BASE"], cap)
    if is_greylisting(reply):
        greylist = config["FLASKY_GREYLIST_DELAY"] * random.uniform(1.0, 1.0 + _JITTER_ABOVE)
        return max(backoff, greylist)
    return backoff
