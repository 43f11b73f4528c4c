"""The app's rate limiter (Flask-Limiter), counting in Redis, for any view that needs a limit.

Nothing is limited by default: a view opts in with `@limiter.limit(...)`. Limits are kept per
client address (`request.remote_addr`: behind a reverse proxy, the app must be told which
forwarded address to trust, e.g. with werkzeug's ProxyFix, or every client shares one count).

The storage is `RATELIMIT_STORAGE_URI` from the app config (`REDIS_URL` unless set). A Redis
outage never turns into an error page: the limiter then counts in this process's memory until
Redis answers again, and any other storage error is logged and the request let through.
"""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# Seconds: a hung Redis must not hold a request for longer than a broker publish would.
_REDIS_TIMEOUT = 0.5

limiter = Limiter(
    get_remote_address,
    default_limits=[],
    storage_options={"socket_connect_timeout": _REDIS_TIMEOUT, "socket_timeout": _REDIS_TIMEOUT},
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    headers_enabled=True,  # Retry-After on 429 answers
)
