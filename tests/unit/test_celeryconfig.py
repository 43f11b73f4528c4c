"""celeryconfig.py: Celery's settings, built from flasky's configuration by `create_app`."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from celeryconfig import PRIORITY_QUEUES, SWEEP_OUTBOX_TASK, celery_settings
from tests.unit.conftest import make_app
from web.config import load_config


def test_the_apps_accept_json_only(app: Flask) -> None:
    conf = app.extensions["celery"].conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.event_serializer == "json"


def test_the_queue_settings_come_from_the_configuration(tmp_path: Path) -> None:
    env = {
        "REDIS_URL": "redis://redis:6379/2",
        "CELERY_TASK_SOFT_TIME_LIMIT": "20",
        "CELERY_TASK_TIME_LIMIT": "25",
        "CELERY_VISIBILITY_TIMEOUT": "900",
        "CELERY_BROKER_SOCKET_TIMEOUT": "0.25",
        "FLASKY_SWEEP_INTERVAL": "5",
        "CELERY_BEAT_SCHEDULE": "/var/lib/flasky/beat",
    }
    settings = celery_settings(load_config("testing", env, str(tmp_path)))
    assert settings["broker_url"] == "redis://redis:6379/2"
    assert (settings["task_soft_time_limit"], settings["task_time_limit"]) == (20, 25)
    assert settings["broker_connection_timeout"] == 0.25
    options = settings["broker_transport_options"]
    assert options["visibility_timeout"] == 900
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.25
    assert settings["beat_schedule"]["sweep-outbox"] == {
        "task": SWEEP_OUTBOX_TASK,
        "schedule": 5.0,
        "options": {"expires": 5.0},  # a sweep that waited a whole interval is dropped
    }
    assert settings["beat_schedule_filename"] == "/var/lib/flasky/beat"


def test_a_killed_worker_loses_no_message_and_reserves_one_at_a_time(tmp_path: Path) -> None:
    settings = celery_settings(load_config("testing", {}, str(tmp_path)))
    assert settings["task_acks_late"] is True and settings["task_reject_on_worker_lost"] is True
    assert settings["worker_prefetch_multiplier"] == 1
    assert settings["task_ignore_result"] is True


def test_one_queue_per_priority_and_the_sweeper_on_the_high_one(app: Flask) -> None:
    conf = app.extensions["celery"].conf
    assert [queue.name for queue in conf.task_queues] == list(PRIORITY_QUEUES.values())
    assert conf.task_default_queue == PRIORITY_QUEUES["normal"] == "flasky.normal"
    assert conf.task_routes == {SWEEP_OUTBOX_TASK: {"queue": "flasky.high"}}


def test_a_celery_override_is_merged_over_the_settings_built_from_the_rest() -> None:
    app = make_app(CELERY={"broker_url": "memory://", "task_time_limit": 150}, MAIL_TIMEOUT=3.0)
    conf = app.extensions["celery"].conf
    assert conf.broker_url == "memory://" and conf.task_time_limit == 150
    assert conf.task_soft_time_limit == 30  # the rest is still built from the configuration
    assert app.config["CELERY"]["broker_url"] == "memory://"
