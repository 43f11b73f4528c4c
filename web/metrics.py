"""`/metrics`: the outbox in Prometheus's text format, so that alerts need neither Flower nor
the dashboard.

Who may read it: a browser with the admin's session (web/admin/auth.py), or, when
`METRICS_TOKEN` is set, a scraper sending `Authorization: Bearer <METRICS_TOKEN>`. Anything
else gets 401 with `WWW-Authenticate: Bearer`, never a redirect to the login page: a scraper
would follow it and store a page of HTML as a failed scrape, and a person logs in at /admin/
first. The token is compared in constant time (as SHA-256 digests, so its length leaks no
more than its content). There is no rate limit: Prometheus asks every 15 s or so, and each
answer costs five grouped queries (no work per row, in SQL or here).

The text is written here, not by prometheus_client: four families with fixed names, whose
label values come from the code's own enums, take a dozen lines of formatting, where
prometheus_client would add a registry, a Collector class and a runtime dependency for the
same bytes. The tests read the output with prometheus_client's parser, the format's reference.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, Response, current_app, request

from web.admin import auth
from web.models import utcnow
from web.outbox import activity, queries

metrics = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Family:
    """One metric: its name, "gauge" or "counter", its help, and its samples (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]]


@metrics.get("/metrics")
def metrics_page() -> Response:
    if not _authorized():
        return Response(
            "401 Unauthorized: log in at /admin/, or send Authorization: Bearer <METRICS_TOKEN>\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="flasky metrics"', **_NO_STORE},
            content_type="text/plain; charset=utf-8",
        )
    return Response(exposition(collect()), 200, _NO_STORE, content_type=CONTENT_TYPE)


def _authorized() -> bool:
    token = current_app.config["METRICS_TOKEN"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and given.strip():
        return hmac.compare_digest(_digest(given.strip()), _digest(token))
    return auth.is_logged_in()


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def collect(now: datetime | None = None) -> list[Family]:
    """The outbox's gauges and the attempts' counters, read from the database now."""
    now = now or utcnow()
    scheduled, oldest = queries.waiting(now)
    found = activity.emails_by_status_and_priority()
    # Every status and priority, zeros included, so that each series exists from the start.
    pairs = list(itertools.product(queries.STATUSES, activity.PRIORITIES))
    pairs += sorted(found.keys() - set(pairs))
    return [
        Family(
            "flasky_outbox_emails",
            "gauge",
            "Emails in the outbox by status and priority (scheduled ones are queued).",
            [({"status": s, "priority": p}, found.get((s, p), 0)) for s, p in pairs],
        ),
        Family(
            "flasky_outbox_scheduled_emails",
            "gauge",
            "Queued emails whose send_at is still ahead.",
            [({}, scheduled)],
        ),
        Family(
            "flasky_outbox_oldest_due_age_seconds",
            "gauge",
            "How long the oldest due undelivered email has been due; 0 when none is.",
            [({}, round(oldest.total_seconds(), 3) if oldest is not None else 0)],
        ),
        Family(
            "flasky_delivery_attempts_total",
            "counter",
            "Delivery attempts by outcome: sent, retry (failed, to be tried again) or failed.",
            [({"outcome": o}, n) for o, n in activity.attempt_totals().items()],
        ),
    ]


def exposition(families: Iterable[Family]) -> str:
    """The families in Prometheus's text exposition format, version 0.0.4."""
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            pairs = ",".join(f'{k}="{_escape(v, quotes=True)}"' for k, v in labels.items())
            lines.append(
                f"{family.name}{{{pairs}}} {value!r}" if pairs else f"{family.name} {value!r}"
            )
    return "\n".join(lines) + "\n"


def _escape(text: str, *, quotes: bool = False) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quotes else text
