"""Ways to fill the outbox: through `web.outbox.send_email` as the web does, or in bulk with SQL.

`queue_emails` is the real path (render both bodies, INSERT, commit, publish the ids after the
commit); `insert_rows` writes rows straight into the table with one INSERT ... SELECT
generate_series, for the outage backlog and for the large tables of the query timings.
"""

from __future__ import annotations

import psycopg
from flask import Flask

from devtools.environment import ADMIN
from web.extensions import db
from web.outbox.api import send_email
from web.outbox.render import render_bodies

SUBJECT = "New User"
TEMPLATE = "mail/new_user"


def queue_emails(app: Flask, count: int, *, batch: int = 100, prefix: str = "bench") -> None:
    """`count` emails through `send_email`, committed (and so published) `batch` at a time."""
    with app.app_context():
        for start in range(0, count, batch):
            for number in range(start, min(start + batch, count)):
                send_email(ADMIN, SUBJECT, TEMPLATE, name=f"{prefix}-{number}")
            db.session.commit()
        db.session.remove()


def rendered_email(app: Flask, name: str = "bench-user") -> dict[str, str]:
    """What `send_email` stores for one email: subject, sender, both bodies (for the naive
    pattern's task arguments and for bulk rows)."""
    with app.app_context():
        text_body, html_body = render_bodies(TEMPLATE, name=name)
        prefix = app.config["FLASKY_MAIL_SUBJECT_PREFIX"]
        return {
            "to": ADMIN,
            "subject": f"{prefix} {SUBJECT}",
            "sender": app.config["FLASKY_MAIL_SENDER"],
            "text_body": text_body,
            "html_body": html_body,
        }


_INSERT_ROWS = """
INSERT INTO emails (recipients, sender, subject, text_body, html_body, message_id, status,
                    priority, attempts, next_attempt_at, created_at, updated_at, sent_at,
                    smtp_reply)
SELECT %(recipients)s::json, %(sender)s, %(subject)s, %(text_body)s, %(html_body)s,
       '<' || gen_random_uuid() || '@example.com>', %(status)s::varchar,
       %(priority)s::varchar, %(attempts)s,
       CASE WHEN %(sent)s THEN NULL ELSE t END, t, t,
       CASE WHEN %(sent)s THEN t END,
       CASE WHEN %(sent)s THEN '250 2.0.0 OK: queued' END
FROM generate_series(1, %(count)s) AS n,
     LATERAL (SELECT (now() AT TIME ZONE 'utc') - interval '1 hour' AS t) AS times
"""


def insert_rows(
    dsn: str, email: dict[str, str], count: int, status: str, priority: str = "normal"
) -> None:
    """`count` rows of `email` with `status` ('queued' or 'sent') and `priority`, created an
    hour ago; then VACUUM ANALYZE, so that the planner knows the table as autovacuum soon
    would."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            _INSERT_ROWS,
            {
                "recipients": f'["{email["to"]}"]',
                "sender": email["sender"],
                "subject": email["subject"],
                "text_body": email["text_body"],
                "html_body": email["html_body"],
                "status": status,
                "priority": priority,
                "attempts": 1 if status == "sent" else 0,
                "sent": status == "sent",
                "count": count,
            },
        )
        conn.execute("VACUUM ANALYZE emails")
