"""`--profile`: where flasky spends its CPU, per delivered email and per request (py-spy).

The worker: one delivery of N emails with `--pool prefork --concurrency 2`, sampled over the
worker's main process and its pool processes. The web: N name-form POSTs (each with its GET)
from 8 clients, sampled over gunicorn's processes. Shares of samples times the CPU measured
from /proc give milliseconds per email and per POST.
"""

from __future__ import annotations

from bench import delivery, http_load, pyspy
from bench.delivery import prefork, threads
from bench.report import Details, Table
from bench.resources import cpu_seconds
from bench.results import Results
from bench.sizes import Sizes
from bench.stack import Stack
from devtools.waiting import wait_until

# label -> a frame that marks it ("function (file"); a sample counts once per label.
WORKER = {
    "pool processes, in all (the task, its tracing, pool IPC)": "workloop (billiard/",
    "  flasky's task (worker/tasks.py deliver_email)": "deliver_email (worker/tasks.py",
    "  claim of a batch: UPDATE ... RETURNING + COMMIT": "claim_many (worker/claims.py",
    "  one email in a sending thread (worker/delivery.py)": "_deliver_one (worker/delivery.py",
    "  build_message (Flask-Mail Message)": "build_message (worker/message.py",
    "  message_bytes (MIME serialisation)": "message_bytes (worker/message.py",
    "  SMTP exchange (worker/smtp.py)": "send (worker/smtp.py",
    "  mark_sent: UPDATE + COMMIT (SQLAlchemy ORM)": "mark_sent (worker/claims.py",
    "  SQLAlchemy statement building and cache keys (sql/)": "sqlalchemy/sql/",
    "  logging": "_log (logging/__init__.py",
    "main process, in all (celery/worker/loops.py asynloop)": "asynloop (celery/worker/loops.py",
    "  task events (celery/events)": "celery/events/",
    "  kombu's Redis transport (receive, ack)": "kombu/transport/redis.py",
    "  of which redis-py client objects (redis/client.py __init__)": "__init__ (redis/client.py",
}
WEB = {
    "the view (web/views.py index), GET and POST": "index (web/views.py",
    "  POST: store the user and the email (_add_user_if_new)": "_add_user_if_new (web/views.py",
    "    send_email: render, inline CSS, INSERT": "send_email (web/outbox/api.py",
    "      render_bodies (two templates, CSS inlined)": "render_bodies (web/outbox/render.py",
    "    publish to Redis after commit (web/outbox/api.py publish)": "publish (web/outbox/api.py",
    "      task-sent event (task_send_sent_event)": "celery/events/",
    "  render_template (pages)": "render_template (flask/templating.py",
    "CSRF check (Flask-WTF)": "protect (flask_wtf/csrf.py",
    "the form's rate limit (limits: the counter in Redis)": "(limits/",
    "SQLAlchemy, all uses": "sqlalchemy/",
    "redis-py, all uses (publish, limiter)": "redis/",
}


def run(stack: Stack, sizes: Sizes, results: Results) -> None:
    pyspy.executable()  # fail early when py-spy is missing
    _worker(stack, sizes, results)
    _celery_floor(stack, sizes, results)
    _web(stack, sizes, results)


def _noop_cpu_ms(stack: Stack, count: int, events: bool) -> float:
    """Worker CPU per task for `count` no-op tasks with flasky's settings (2 prefork)."""
    from bench import noop_celery

    stack.reset()
    for number in range(count):
        noop_celery.noop.delay(number)
    redis = stack.redis.client()
    worker = stack.start_worker(
        *prefork(2),
        app="bench.noop_celery",
        extra_env={"BENCH_TASK_EVENTS": "1" if events else "0"},
    )
    try:
        before = cpu_seconds(worker.pid)
        wait_until(
            lambda: redis.llen("flasky.normal") == 0 and redis.hlen("unacked") == 0,
            120 + count / 50,
            "the no-op tasks to be done",
        )
        return 1000 * (cpu_seconds(worker.pid) - before) / count
    finally:
        stack.stop_process(worker)


def _celery_floor(stack: Stack, sizes: Sizes, results: Results) -> None:
    count = sizes.throughput_emails
    table = Table(
        f"Profile: what one Celery task costs before any email work ({count} no-op tasks)",
        ["task", "worker CPU per task"],
    )
    for events, label in ((True, "as configured (task events on)"), (False, "task events off")):
        table.add(
            f"no-op task, flasky's celeryconfig.py, 2 prefork, {label}",
            f"{_noop_cpu_ms(stack, count, events):.2f} ms",
        )
    table.notes.append(
        "The queue is filled first; the worker's CPU is counted from its start-up's end until "
        "the queue and its unacknowledged set are empty."
    )
    results.blocks.append(table)


def _table(title: str, unit: str, cpu_ms: float, total: int, found: dict[str, float]) -> Table:
    table = Table(title, ["where", "share of CPU samples", unit])
    table.add("everything sampled", f"100% of {total}", f"{cpu_ms:.2f} ms")
    for label, share in found.items():
        table.add(label, f"{100 * share:.1f}%", f"{share * cpu_ms:.2f} ms")
    return table


def _worker(stack: Stack, sizes: Sizes, results: Results) -> None:
    count = sizes.profile_emails
    raw = stack.workdir / "worker.pyspy"
    stack.sink.set_delay(0.0)
    run = delivery.flasky(stack, count, prefork(2), observe=lambda w: pyspy.recording(w.pid, raw))
    total, found = pyspy.shares(raw, WORKER)
    table = _table(
        f"Profile: flasky worker, {count} emails, 2 prefork processes (py-spy)",
        "CPU per email",
        run.cpu_ms_per_email or 0.0,
        total,
        found,
    )
    table.notes.append(
        "CPU per email measured from /proc during the profiled run (sampling adds a little); "
        "shares from py-spy samples of running threads."
    )
    results.blocks.append(table)
    results.blocks.append(
        Details("Profile: worker, functions on top of the stack", pyspy.top_self(raw))
    )


def _web(stack: Stack, sizes: Sizes, results: Results) -> None:
    count = sizes.profile_emails
    raw = stack.workdir / "web.pyspy"
    stack.reset()
    worker = stack.start_worker(*threads(32))
    gunicorn, port = stack.start_gunicorn("web:create_app()")
    http_load.run(port, 32, 8)
    before = cpu_seconds(gunicorn.pid)
    with pyspy.recording(gunicorn.pid, raw):
        http_load.run(port, count, 8)
    cpu_ms = 1000 * (cpu_seconds(gunicorn.pid) - before) / count
    stack.stop_process(gunicorn)
    stack.stop_process(worker)
    total, found = pyspy.shares(raw, WEB)
    table = _table(
        f"Profile: flasky web, {count} POSTs (each after its GET), 8 clients (py-spy)",
        "CPU per GET + POST",
        cpu_ms,
        total,
        found,
    )
    results.blocks.append(table)
    results.blocks.append(
        Details("Profile: web, functions on top of the stack", pyspy.top_self(raw))
    )
