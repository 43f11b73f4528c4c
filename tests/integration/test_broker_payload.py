"""What crosses the broker: JSON only, and nothing but the email id (no addresses, no bodies)."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from kombu.exceptions import ContentDisallowed
from kombu.serialization import dumps, loads, prepare_accept_content

from tests.forms import post_name
from tests.integration.conftest import ADMIN, emails


def _all_redis_bytes(url: str) -> bytes:
    """Every key and value in the Redis database, as bytes (lists and hashes flattened)."""
    client = redis.Redis.from_url(url)
    chunks: list[bytes] = []
    for key in client.scan_iter():
        chunks.append(key)
        kind = client.type(key)
        if kind == b"list":
            chunks.extend(client.lrange(key, 0, -1))
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                chunks.extend([field, value])
        elif kind == b"zset":
            chunks.extend(client.zrange(key, 0, -1))
        elif kind == b"set":
            chunks.extend(client.smembers(key))
        elif kind == b"string":
            chunks.append(client.get(key))
    return b"\n".join(chunks)


def test_a_queued_task_carries_only_the_email_id_as_json(
    app: Flask, client: FlaskClient, redis_url: str
) -> None:
    """No worker runs here, so the published message stays on the queue to be read."""
    name = "Sybil Secretname"
    post_name(client, name)
    (row,) = emails(app)

    raw = redis.Redis.from_url(redis_url).lrange("flasky.normal", 0, -1)
    assert len(raw) == 1
    envelope = json.loads(raw[0])
    assert envelope["content-type"] == "application/json"
    assert envelope["headers"]["task"] == "flasky.send_email"
    body = json.loads(base64.b64decode(envelope["body"]))
    assert body[0] == [[row.id]] and body[1] == {}

    everything = _all_redis_bytes(redis_url)
    for secret in (ADMIN, name, "Secretname", row.subject, row.message_id):
        assert secret.encode() not in everything, f"{secret!r} found in Redis"


def test_the_published_message_round_trips_and_pickle_is_refused(
    app: Flask, client: FlaskClient, redis_url: str
) -> None:
    """Decode the message exactly as a worker does, with the app's accept list."""
    post_name(client, "Trent")
    (row,) = emails(app)
    envelope = json.loads(redis.Redis.from_url(redis_url).lrange("flasky.normal", 0, -1)[0])
    accept = prepare_accept_content(app.extensions["celery"].conf.accept_content)
    args, kwargs, _embed = loads(
        base64.b64decode(envelope["body"]),
        envelope["content-type"],
        envelope["content-encoding"],
        accept=accept,
    )
    assert (args, kwargs) == ([[row.id]], {})

    content_type, encoding, payload = dumps(([row.id], {}), serializer="pickle")
    with pytest.raises(ContentDisallowed):
        loads(payload, content_type, encoding, accept=accept)
