"""Every Celery setting of flasky: the one place to read and tune the queue.

`celery_settings(config)` maps flasky's configuration (read once from the environment by
`web.config.load_config`, overrides applied) to Celery's settings; `create_app` stores the
result in `app.config["CELERY"]`, as in Flask's own Celery example. This module reads no
environment and imports nothing of flasky's: it is a pure mapping.

The waits are chained so that each bound sits inside the next one:

    MAIL_TIMEOUT (SMTP socket) < task_soft_time_limit < task_time_limit
        < FLASKY_LEASE_SECONDS (the outbox row's claim) < broker visibility_timeout

and no retry countdown is longer than FLASKY_MAX_COUNTDOWN, itself below the visibility
timeout, so Redis never redelivers a message that is merely waiting for its ETA.
`web.config.check_wait_chain` stops start-up with one line naming the variable when the chain
is broken.

Settings left at Celery's default are not repeated here; each one below says why it differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kombu import Queue

# The names on the wire. Messages already queued carry them: never rename.
SEND_EMAIL_TASK = "flasky.send_email"
SWEEP_OUTBOX_TASK = "flasky.sweep_outbox"

# One queue per priority (web/outbox/priority.py), highest first. A worker started without -Q
# consumes all three; the Redis transport takes from them in turn, so a high-priority email is
# picked up next even behind 10,000 bulk ones.
PRIORITY_QUEUES: dict[str, str] = {
    "high": "flasky.high",
    "normal": "flasky.normal",
    "bulk": "flasky.bulk",
}


def celery_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Celery's settings for a flasky configuration (the keys `web.config` loads)."""
    visibility_timeout = config["CELERY_VISIBILITY_TIMEOUT"]
    socket_timeout = config["CELERY_BROKER_SOCKET_TIMEOUT"]
    sweep_interval = config["FLASKY_SWEEP_INTERVAL"]
    return {
        # Redis is the broker. Only the email id crosses it (worker/tasks.py).
        "broker_url": config["REDIS_URL"],
        # The worker registers the tasks of this module.
        "imports": ("worker.tasks",),
        # JSON only: nothing that can execute code on unpickling, and what crosses the broker
        # stays readable in Flower and redis-cli.
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_queues": tuple(Queue(name) for name in PRIORITY_QUEUES.values()),
        "task_default_queue": PRIORITY_QUEUES["normal"],
        # The sweeper goes on the high queue: a backlog cannot hold it up.
        "task_routes": {SWEEP_OUTBOX_TASK: {"queue": PRIORITY_QUEUES["high"]}},
        # Nobody reads task results: the outbox row is the result. Saves a Redis write per task.
        "task_ignore_result": True,
        # A message is acknowledged after the task ran, not before, and is requeued when the
        # worker process running it dies, so a SIGKILLed worker loses nothing. The outbox claim
        # makes the second delivery harmless.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message reserved per process: a slow SMTP send does not hold other emails hostage.
        "worker_prefetch_multiplier": 1,
        # Soft limit: the task gets SoftTimeLimitExceeded and records a transient failure.
        "task_soft_time_limit": config["CELERY_TASK_SOFT_TIME_LIMIT"],
        # Hard limit: the pool kills the process; the row's lease then expires and the sweeper
        # retries.
        "task_time_limit": config["CELERY_TASK_TIME_LIMIT"],
        # Bounded broker waits: the web publishes with a short bound and never hangs on a dead
        # Redis.
        "broker_connection_timeout": socket_timeout,
        "broker_transport_options": {
            # Must exceed every time limit and countdown, or Redis redelivers running and
            # waiting tasks.
            "visibility_timeout": visibility_timeout,
            "socket_connect_timeout": socket_timeout,
            "socket_timeout": socket_timeout,
            # Retry a lost broker connection a bounded number of times when publishing.
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.2,
        },
        # The worker itself keeps reconnecting to Redis forever (the default), also at start-up.
        "broker_connection_retry_on_startup": True,
        # Events on, so Flower shows workers and every task (sent, started, succeeded, retried).
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # A SIGTERM (a deploy) lets in-flight sends finish for this long before the worker exits.
        "worker_soft_shutdown_timeout": config["CELERY_SOFT_SHUTDOWN_TIMEOUT"],
        "worker_enable_soft_shutdown_on_idle": False,
        # Each worker process restarts after this many tasks: bounds memory growth in long runs.
        "worker_max_tasks_per_child": config["CELERY_MAX_TASKS_PER_CHILD"],
        "timezone": "UTC",
        "beat_schedule": {
            "sweep-outbox": {
                "task": SWEEP_OUTBOX_TASK,
                "schedule": sweep_interval,
                # A sweep that waited longer than one interval is stale: the next one replaces it.
                "options": {"expires": sweep_interval},
            },
        },
        "beat_schedule_filename": config["CELERY_BEAT_SCHEDULE"],
    }
