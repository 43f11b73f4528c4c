"""The fault suite: the delivery promise (docs/design.md) tested on the real programs, figures.

Each scenario starts gunicorn, `celery -A worker worker` and `celery -A worker beat` as
subprocesses against a Redis, an SMTP server and a PostgreSQL database of its own, sends a batch,
injects one fault in the middle and counts, by Message-ID, what the SMTP server received against
what the outbox committed. The counts go to `test-output/faults/<scenario>.json`;
`python -m tests.integration.faults.report` turns them into the table in docs/reliability.md.
"""
