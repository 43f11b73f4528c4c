"""Polling until something holds: the one wait of the dev runner, the tests and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy, and return that.

    Raises TimeoutError naming `what` after `timeout` seconds. An exception from `condition`
    ends the wait at once: `running(process)` in a condition stops waiting for a dead process.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
