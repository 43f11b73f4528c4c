"""The bulk API: `send_bulk()` records one template's email to many recipients, each with its
own context, in the caller's transaction (docs/mail-api.md, "Bulk").

Every recipient is checked and rendered before anything is written, with the checks of
`send_email` (a bad one anywhere raises `InvalidEmail` naming its position, and nothing is
written or published); then every row goes in with a few multi-row INSERT ... ON CONFLICT
(idempotency_key) DO NOTHING statements, and the new ids are published after the commit as
`send_email` publishes its own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import TextClause, bindparam, select, text
from sqlalchemy.dialects import postgresql

from web.extensions import db
from web.models import Email, utcnow
from web.outbox import checks
from web.outbox.api import (
    common_fields,
    email_fields,
    insert_statement,
    publish_after_commit,
)
from web.outbox.checks import InvalidEmail
from web.outbox.priority import Priority
from web.outbox.render import UnstorableContext, render_many
from web.outbox.size import check_size

__all__ = ["InvalidEmail", "Recipient", "send_bulk"]

# Keys per SELECT when looking up rows whose key was used before: far under the bind
# parameter limits of PostgreSQL (65,535) and SQLite (32,766).
_KEYS_PER_SELECT = 1000


@dataclass(frozen=True)
class Recipient:
    """One email of a bulk: its To (one address or a list), the variables of its templates,
    and an optional idempotency key (as `send_email`'s).

    A frozen dataclass rather than a bare dict: a type checker catches a misspelt field, and
    the shape is written down once, here. `send_bulk` also takes mappings with the same keys,
    for recipients built from query rows or JSON.
    """

    to: str | Sequence[str]
    context: Mapping[str, object] = field(default_factory=dict)
    idempotency_key: str | None = None


def send_bulk(
    subject: str,
    template: str,
    recipients: Iterable[Recipient | Mapping[str, Any]],
    *,
    cc: str | Iterable[str] | None = None,
    bcc: str | Iterable[str] | None = None,
    reply_to: str | None = None,
    send_at: datetime | None = None,
    priority: str = Priority.BULK,
) -> list[int]:
    """Render `template`.txt and `template`.html for each recipient, add one outbox email per
    recipient, and return their ids in the recipients' order.

    `subject`, `cc`, `bcc`, `reply_to`, `send_at` and `priority` are checked as `send_email`
    checks them and shared by every email. Attachments are not taken: each email would store
    its own copy (use `send_email`). Raises `InvalidEmail` before anything is written; its
    field names the recipient's position (`recipients[2].to`). A recipient whose key was used
    before, by an earlier call or earlier in this one, gets that email's id and queues nothing.
    """
    now = utcnow()
    common = common_fields(
        subject, cc=cc, bcc=bcc, reply_to=reply_to, send_at=send_at, priority=priority, now=now
    )
    checked = [_checked(position, item) for position, item in _enumerate(recipients)]
    if not checked:
        return []
    try:
        bodies = render_many(template, [recipient.context for recipient in checked])
    except UnstorableContext as exc:
        raise InvalidEmail(f"recipients[{exc.position}].context", exc.reason) from None
    rows = [
        email_fields(common, list(recipient.to), recipient.idempotency_key, each)
        for recipient, each in zip(checked, bodies, strict=True)
    ]
    limit = current_app.config["FLASKY_MAX_MESSAGE_BYTES"]
    for position, row in enumerate(rows):
        check_size(row, [], limit, context_field=f"recipients[{position}].context")
    inserted = _insert(common, rows)
    if common["send_at"] is None:
        for row in rows:
            if row["message_id"] in inserted:
                publish_after_commit(inserted[row["message_id"]], str(common["priority"]))
    return _ids(rows, inserted)


def _enumerate(recipients: object) -> Iterator[tuple[int, object]]:
    if isinstance(recipients, str | bytes | Mapping) or not isinstance(recipients, Iterable):
        raise InvalidEmail("recipients", "expected a list of recipients")
    return enumerate(recipients)


def _checked(position: int, item: object) -> Recipient:
    """The recipient at `position` with its addresses and key checked (`send_email`'s checks),
    its errors naming it (`recipients[2].to`)."""
    recipient = _recipient(position, item)
    field_prefix = f"recipients[{position}]"
    context = recipient.context
    if not isinstance(context, Mapping) or not all(isinstance(name, str) for name in context):
        raise InvalidEmail(f"{field_prefix}.context", "expected a mapping of variable names")
    return Recipient(
        checks.addresses(f"{field_prefix}.to", recipient.to, required=True),
        context,
        _idempotency_key(field_prefix, recipient.idempotency_key),
    )


def _recipient(position: int, item: object) -> Recipient:
    if isinstance(item, Recipient):
        return item
    if isinstance(item, Mapping):
        try:
            return Recipient(**item)
        except TypeError as exc:  # a missing "to", or a key Recipient does not have
            raise InvalidEmail(f"recipients[{position}]", str(exc)) from None
    raise InvalidEmail(f"recipients[{position}]", f"expected a Recipient or a mapping: {item!r}")


def _idempotency_key(field_prefix: str, value: str | None) -> str | None:
    """`checks.idempotency_key`, its error naming the recipient."""
    try:
        return checks.idempotency_key(value)
    except InvalidEmail as exc:
        raise InvalidEmail(f"{field_prefix}.{exc.field}", exc.reason) from None


def _insert(common: Mapping[str, object], rows: list[dict[str, object]]) -> dict[object, int]:
    """Insert `rows`; return the new ids by Message-ID. A row whose key is taken is skipped,
    so has no id here.

    On PostgreSQL, one INSERT ... SELECT FROM unnest(...) takes each column that differs from
    row to row as one array: the multi-row INSERT ... VALUES that SQLAlchemy writes for the
    other databases has 20 parameters per row, and psycopg spent a third of a bulk's time
    parsing those statements (bench/bulk_queue.py --profile)."""
    if db.session.get_bind().dialect.name == "postgresql":
        statement = _unnest_insert(tuple(sorted(common)))
        params: dict[str, object] = dict(common)
        params.update({f"own_{name}": [row[name] for row in rows] for name in _OWN_COLUMNS})
        params["own_recipients"] = [json.dumps(row["recipients"]) for row in rows]
        result = db.session.execute(statement, params)
    else:
        result = db.session.execute(insert_statement("id", "message_id"), rows)
    return {message_id: email_id for email_id, message_id in result}


# The columns that differ from one email of a bulk to the next; `common_fields` has the rest.
_OWN_COLUMNS = ("recipients", "idempotency_key", "text_body", "html_body", "message_id")


@functools.cache
def _unnest_insert(common_columns: tuple[str, ...]) -> TextClause:
    """INSERT ... SELECT FROM unnest(arrays) ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, message_id: each value cast to its column's type, which PostgreSQL does not
    infer for a SELECT's parameters."""
    table = Email.__table__

    def cast(expression: str, column: str) -> str:
        return f"CAST({expression} AS {table.c[column].type.compile(postgresql.dialect())})"

    columns = ", ".join((*_OWN_COLUMNS, *common_columns))
    arrays = ", ".join(f"CAST(:own_{name} AS text[])" for name in _OWN_COLUMNS)
    values = ", ".join(
        (
            *(cast(f"own.{name}", name) for name in _OWN_COLUMNS),
            *(cast(f":{name}", name) for name in common_columns),
        )
    )
    return text(
        # Only column names, from this module and the model, are formatted in; values are bound.
        f"INSERT INTO emails ({columns}) SELECT {values} "  # noqa: S608
        f"FROM unnest({arrays}) AS own({', '.join(_OWN_COLUMNS)}) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, message_id"
    ).bindparams(
        *(bindparam(name, type_=table.c[name].type) for name in common_columns),
    )


def _ids(rows: list[dict[str, object]], inserted: Mapping[object, int]) -> list[int]:
    """Each row's id: the new one, or that of the email which already had its key."""
    existing = _emails_with_keys(
        [row["idempotency_key"] for row in rows if row["message_id"] not in inserted]
    )
    ids = []
    for row in rows:
        email_id = inserted.get(row["message_id"], existing.get(row["idempotency_key"]))
        if email_id is None:
            key = row["idempotency_key"]
            raise RuntimeError(f"idempotency key {key!r}: conflict with a row that is not there")
        ids.append(email_id)
    return ids


def _emails_with_keys(keys: list[object]) -> dict[object, int]:
    found: dict[object, int] = {}
    for start in range(0, len(keys), _KEYS_PER_SELECT):
        chunk = keys[start : start + _KEYS_PER_SELECT]
        statement = select(Email.idempotency_key, Email.id).where(Email.idempotency_key.in_(chunk))
        found.update((key, email_id) for key, email_id in db.session.execute(statement))
    return found
