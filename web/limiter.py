"""The app's rate limiter (Flask-Limiter), counting in Redis, for any view that needs a limit.

Nothing is limited by default: a view opts in with `@limiter.limit(...)`. Limits are kept per
client address (`request.remote_addr`: behind a reverse proxy, set FLASKY_PROXY_HOPS so that
it is the client's forwarded address, or every client shares one count).

The storage is `RATELIMIT_STORAGE_URI` from the app config (`REDIS_URL` unless set). A Redis
outage never turns into an error page: the limiter then counts in this process's memory until
Redis answers again, and any other storage error is logged and the request let through. That
suits the name form; a view guarding against guessing adds `@fail_closed` (see there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from flask import make_response, render_template, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

# Seconds: a hung Redis must not hold a request for longer than a broker publish would.
_REDIS_TIMEOUT = 0.5

# What a refused request is told to wait: Flask-Limiter looks for Redis again 1, 2, 4 ... 32
# seconds after it lost it.
RETRY_AFTER_SECONDS = 30

limiter = Limiter(
    get_remote_address,
    default_limits=[],
    storage_options={"socket_connect_timeout": _REDIS_TIMEOUT, "socket_timeout": _REDIS_TIMEOUT},
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    headers_enabled=True,  # Retry-After on 429 answers
)

P = ParamSpec("P")


def counted_in_storage() -> bool:
    """Whether the limits are counted in the configured storage, shared by every process, and
    not in this process's memory, where the limiter falls back while the storage is down."""
    return limiter.limiter.storage is limiter.storage


def fail_closed(view: Callable[P, object]) -> Callable[P, object]:
    """Put under `@limiter.limit(...)`: a POST whose attempt could not be counted in the shared
    storage gets a 503 "try again shortly" page, and the view does not run.

    For the admin login: counted in each process's memory, the limit would allow that many
    guesses per gunicorn worker (7 where 5 are allowed with two), so no guess is checked at
    all until the count is shared again.
    """

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> object:
        if request.method == "POST" and not counted_in_storage():
            log.warning(
                "refused a POST to %s from %s: the rate limit storage is unreachable",
                request.path,
                request.remote_addr,
            )
            return _try_again_shortly()
        return view(*args, **kwargs)

    return wrapper


def _try_again_shortly() -> Response:
    response = make_response(render_template("try_again_shortly.html"), 503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
