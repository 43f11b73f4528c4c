"""What waits on the broker: the email ids of the `send_email` messages on a queue."""

from __future__ import annotations

import base64
import json

import redis

from celeryconfig import SEND_EMAIL_TASK


def queued_ids(broker: redis.Redis, queue: str = "flasky.bulk") -> list[int]:
    """The email ids of every `send_email` message on `queue`, newest message first (a
    message's body is base64 JSON: [args, kwargs, ...], and its one argument a list of ids)."""
    ids: list[int] = []
    for raw in broker.lrange(queue, 0, -1):
        envelope = json.loads(raw)
        if envelope["headers"]["task"] == SEND_EMAIL_TASK:
            ids.extend(json.loads(base64.b64decode(envelope["body"]))[0][0])
    return ids
