"""Finding emails: one filter (status, priority, free text) for the dashboard, the CLI and the
bulk retry, so that the list an operator reads is the set of rows an action changes.

The free text matches the id when it is a number or "#123", and otherwise a case-insensitive
substring of the recipients, the subject or the idempotency key. The substring search reads
every row the status and priority leave (no index serves `%text%`); the bodies are never read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Select, Text, and_, cast, false, or_

from web.models import Email, EmailStatus
from web.outbox.addresses import has_control_characters
from web.outbox.priority import Priority

# Not a status but a filter beside them: queued emails whose `send_at` is still ahead.
SCHEDULED = "scheduled"
FILTERS: tuple[str, ...] = (*(status.value for status in EmailStatus), SCHEDULED)
PRIORITIES: tuple[str, ...] = tuple(priority.value for priority in Priority)
MAX_QUERY_LENGTH = 320  # the longest address; no subject worth searching for is longer
# The largest id the `emails.id` column (INTEGER) can hold: a larger number names no email, and
# must not reach the database (PostgreSQL compares it as bigint or numeric, SQLite overflows).
MAX_ID = 2**31 - 1

_ID = re.compile(r"#?([0-9]+)")
_LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class EmailFilter:
    """Which emails: every one by default. `status` is a status or SCHEDULED; `query` free text."""

    status: str | None = None
    priority: str | None = None
    query: str = ""

    def args(self) -> dict[str, str]:
        """The filter as the dashboard's query-string arguments (status, priority, q), unset
        ones left out: what its page links and forms carry."""
        values = {"status": self.status, "priority": self.priority, "q": self.query}
        return {name: value for name, value in values.items() if value}

    def as_json(self) -> dict[str, str]:
        """The filter as an action's target: its set fields, named as in the code."""
        values = {"status": self.status, "priority": self.priority, "query": self.query}
        return {name: value for name, value in values.items() if value}

    def describe(self) -> str:
        """For people: "failed, priority high, matching 'ann'"; "every email" when unset."""
        parts = [self.status] if self.status else []
        if self.priority:
            parts.append(f"priority {self.priority}")
        if self.query:
            parts.append(f"matching {self.query!r}")
        return ", ".join(parts) or "every email"


EVERY_EMAIL = EmailFilter()


@dataclass(frozen=True)
class ParsedFilter:
    """A filter read from input, and why any value was left out of it (for the person)."""

    filter: EmailFilter
    problems: tuple[str, ...] = field(default=())


def parse_filter(status: str | None, priority: str | None, query: str | None) -> ParsedFilter:
    """Read the filter from a form or the command line. A bad value is left out of the filter
    and explained in `problems`, never raised: the dashboard shows the rest of its filter with
    a notice, the CLI refuses to run."""
    problems = []
    status = status or None
    if status is not None and status not in FILTERS:
        problems.append(f"There is no status {status!r}; the statuses are {_choices(FILTERS)}.")
        status = None
    priority = priority or None
    if priority is not None and priority not in PRIORITIES:
        problems.append(
            f"There is no priority {priority!r}; the priorities are {_choices(PRIORITIES)}."
        )
        priority = None
    query = (query or "").strip()
    if len(query) > MAX_QUERY_LENGTH:
        problems.append(
            f"A search is at most {MAX_QUERY_LENGTH} characters; this one has {len(query):,}."
        )
        query = ""
    elif has_control_characters(query):
        # PostgreSQL refuses a NUL in a string, and no stored value holds a control character.
        problems.append("A search cannot contain control characters.")
        query = ""
    return ParsedFilter(EmailFilter(status, priority, query), tuple(problems))


def filter_from_args(args: Mapping[str, str]) -> ParsedFilter:
    """`parse_filter` of the dashboard's arguments (status, priority, q)."""
    return parse_filter(args.get("status"), args.get("priority"), args.get("q"))


def scheduled(now: datetime) -> ColumnElement[bool]:
    """Queued and not yet due: the SCHEDULED filter."""
    return and_(Email.status == EmailStatus.QUEUED, Email.send_at > now)


def conditions(email_filter: EmailFilter, now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `email_filter` on the `emails` table, for a SELECT or an UPDATE."""
    where: list[ColumnElement[bool]] = []
    if email_filter.status == SCHEDULED:
        where.append(scheduled(now))
    elif email_filter.status is not None:
        where.append(Email.status == email_filter.status)
    if email_filter.priority is not None:
        where.append(Email.priority == email_filter.priority)
    if email_filter.query:
        where.append(_matches(email_filter.query))
    return where


def apply(statement: Select, email_filter: EmailFilter, now: datetime) -> Select:
    """`statement` (a SELECT from `emails`) narrowed to the emails `email_filter` matches."""
    return statement.where(*conditions(email_filter, now))


def _matches(query: str) -> ColumnElement[bool]:
    number = _ID.fullmatch(query)
    if number is not None:
        digits = number.group(1).lstrip("0") or "0"
        if len(digits) > len(str(MAX_ID)) or int(digits) > MAX_ID:
            return false()
        return Email.id == int(digits)
    text = _like_pattern(query)
    # The recipients are a JSON list: cast to text (SQLite and PostgreSQL), they read as
    # json.dumps wrote them, so the text is looked for as JSON spells it: "José" as
    # "Jos\u00e9", a quote as \".
    in_json = _like_pattern(json.dumps(query)[1:-1])
    return or_(
        cast(Email.recipients, Text).ilike(in_json, escape=_LIKE_ESCAPE),
        Email.subject.ilike(text, escape=_LIKE_ESCAPE),
        Email.idempotency_key.ilike(text, escape=_LIKE_ESCAPE),
    )


def _like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards in `text` (and the escape character) taken literally."""
    for special in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, _LIKE_ESCAPE + special)
    return f"%{text}%"


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values[:-1]) + f" and {values[-1]}"
