"""Every Celery setting of flasky, read from the environment: the one place to tune the queue.

The waits are chained so that each bound sits inside the next one (DESIGN.md, "Delivery promise"):

    MAIL_TIMEOUT (SMTP socket) < task_soft_time_limit < task_time_limit
        < FLASKY_LEASE_SECONDS (the outbox row's claim) < broker visibility_timeout

and no retry countdown is longer than FLASKY_MAX_COUNTDOWN, itself far below the visibility
timeout, so Redis never redelivers a message that is merely waiting for its ETA. Start-up stops
with one line naming the variable when the chain is broken.

Settings left at Celery's default are not repeated here; each one below says why it differs.
"""

from __future__ import annotations

import os

from kombu import Queue

from web.config import ConfigError, env_float, env_int
from web.priority import QUEUES, Priority, queue_for

_env = os.environ

# Redis is the broker. Only the email id crosses it (see worker/tasks.py).
broker_url = _env.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# JSON only: nothing that can execute code on unpickling, and what crosses the broker stays
# readable in Flower and redis-cli.
task_serializer = "json"
accept_content = ["json"]
event_serializer = "json"

# One queue per priority (web/priority.py). A worker started without -Q consumes all three;
# the Redis transport takes from them in turn, so a high-priority email is picked up next even
# behind 10,000 bulk ones. The sweeper goes on the high queue: a backlog cannot hold it up.
task_queues = tuple(Queue(name) for name in QUEUES)
task_default_queue = queue_for(Priority.NORMAL)
task_routes = {"flasky.sweep_outbox": {"queue": queue_for(Priority.HIGH)}}

# Nobody reads task results: the outbox row is the result. Saves a Redis write per task.
task_ignore_result = True

# A message is acknowledged after the task ran, not before, and is requeued when the worker
# process running it dies, so a SIGKILLed worker loses nothing. The outbox claim makes the
# second delivery harmless.
task_acks_late = True
task_reject_on_worker_lost = True
# One message reserved per process: a slow SMTP send does not hold other emails hostage.
worker_prefetch_multiplier = 1

_mail_timeout = env_float(_env, "MAIL_TIMEOUT", 10.0, minimum=0.1)
# Soft limit: the task gets SoftTimeLimitExceeded and records a transient failure.
task_soft_time_limit = env_int(_env, "CELERY_TASK_SOFT_TIME_LIMIT", 30, minimum=1)
# Hard limit: the pool kills the process; the row's lease then expires and the sweeper retries.
task_time_limit = env_int(_env, "CELERY_TASK_TIME_LIMIT", 45, minimum=1)
# How long a claimed row belongs to one worker before the sweeper may hand it to another.
flasky_lease_seconds = env_int(_env, "FLASKY_LEASE_SECONDS", 60, minimum=1)
# Longest countdown a task retry may carry; longer waits are left to the sweeper.
flasky_max_countdown = env_int(_env, "FLASKY_MAX_COUNTDOWN", 60, minimum=1)
_visibility_timeout = env_int(_env, "CELERY_VISIBILITY_TIMEOUT", 600, minimum=1)
# How long a published row is left to its message while its queue is not empty (the sweeper
# ignores the mark once the queue is empty: the message was lost). As long as Redis itself
# waits before redelivering a message.
flasky_publish_hold = _visibility_timeout

# Bounded broker waits: the web publishes with a short bound and never hangs on a dead Redis.
_socket_timeout = env_float(_env, "CELERY_BROKER_SOCKET_TIMEOUT", 0.5, minimum=0.05)
broker_connection_timeout = _socket_timeout
broker_transport_options = {
    # Must exceed every time limit and countdown, or Redis redelivers running/waiting tasks.
    "visibility_timeout": _visibility_timeout,
    "socket_connect_timeout": _socket_timeout,
    "socket_timeout": _socket_timeout,
    # Retry a lost broker connection a bounded number of times when publishing.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}
# The worker itself keeps reconnecting to Redis forever (the default), also at start-up.
broker_connection_retry_on_startup = True

# Events on, so Flower shows workers and every task (sent, started, succeeded, retried).
worker_send_task_events = True
task_send_sent_event = True

# A SIGTERM (a deploy) lets in-flight sends finish for this long before the worker exits.
worker_soft_shutdown_timeout = env_float(_env, "CELERY_SOFT_SHUTDOWN_TIMEOUT", 20.0)
worker_enable_soft_shutdown_on_idle = False

# Each worker process restarts after this many tasks: bounds memory growth in long runs.
worker_max_tasks_per_child = env_int(_env, "CELERY_MAX_TASKS_PER_CHILD", 10000, minimum=1)

timezone = "UTC"

flasky_sweep_interval = env_float(_env, "FLASKY_SWEEP_INTERVAL", 15.0, minimum=0.1)
beat_schedule = {
    "sweep-outbox": {
        "task": "flasky.sweep_outbox",
        "schedule": flasky_sweep_interval,
        # A sweep that waited longer than one interval is stale: the next one replaces it.
        "options": {"expires": flasky_sweep_interval},
    },
}
beat_schedule_filename = _env.get("CELERY_BEAT_SCHEDULE", "celerybeat-schedule")


def check_bounds(
    mail_timeout: float,
    soft_limit: float,
    hard_limit: float,
    lease: float,
    max_countdown: float,
    visibility_timeout: float,
) -> None:
    """Raise ConfigError unless every wait sits inside the next one."""
    chain = [
        ("MAIL_TIMEOUT", mail_timeout),
        ("CELERY_TASK_SOFT_TIME_LIMIT", soft_limit),
        ("CELERY_TASK_TIME_LIMIT", hard_limit),
        ("FLASKY_LEASE_SECONDS", lease),
        ("CELERY_VISIBILITY_TIMEOUT", visibility_timeout),
    ]
    for (small_name, small), (big_name, big) in zip(chain, chain[1:], strict=False):
        if not small < big:
            raise ConfigError(f"{small_name} ({small}) must be less than {big_name} ({big})")
    if not max_countdown < visibility_timeout:
        raise ConfigError(
            f"FLASKY_MAX_COUNTDOWN ({max_countdown}) must be less than "
            f"CELERY_VISIBILITY_TIMEOUT ({visibility_timeout})"
        )


check_bounds(
    _mail_timeout,
    task_soft_time_limit,
    task_time_limit,
    flasky_lease_seconds,
    flasky_max_countdown,
    _visibility_timeout,
)
