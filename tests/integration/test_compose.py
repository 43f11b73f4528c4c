"""docker-compose.yml, the Dockerfile and .env.example, checked as files (no Docker here).

tests/integration/test_compose_commands.py runs the commands; this file checks the rest of the
contract:
the services and their health, one shared definition for the app's containers, durable Redis,
no secret written down, and an .env.example that sets everything the compose file uses.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

import pytest
import yaml

from tests.integration.compose_file import (
    COMPOSE_PATH,
    ROOT,
    MissingVariable,
    command,
    interpolate,
    load_compose,
    read_dotenv,
    references,
    strings,
)
from web.config import load_config

APP_SERVICES = ("web", "worker", "beat")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|AUTH|KEY")
REQUIRED_SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "FLOWER_BASIC_AUTH")
MERGE_TAG = "tag:yaml.org,2002:merge"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    return read_dotenv()


def test_the_stack_has_every_service(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", "postgres", "web", "worker", "beat", "flower", "mailpit"}
    assert services["redis"]["image"] == "redis:7"
    assert services["postgres"]["image"] == "postgres:16"
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert all(service["restart"] == "unless-stopped" for service in services.values())


@pytest.mark.parametrize("name", ["redis", "postgres", "web", "worker", "flower"])
def test_service_has_a_healthcheck(services: dict[str, Any], name: str) -> None:
    kind, *args = services[name]["healthcheck"]["test"]
    assert kind in ("CMD", "CMD-SHELL") and args


def test_healthchecks_ask_the_right_questions(services: dict[str, Any]) -> None:
    def test_of(name: str) -> str:
        return " ".join(services[name]["healthcheck"]["test"])

    assert "redis-cli ping" in test_of("redis")
    assert "pg_isready" in test_of("postgres")
    assert "/readyz" in test_of("web")
    assert "celery -A worker inspect ping" in test_of("worker")
    # The worker asks itself, not any worker: with --scale each container checks its own.
    assert "celery@$$HOSTNAME" in test_of("worker")


def test_the_app_containers_share_one_definition(compose: dict[str, Any]) -> None:
    """web, worker, beat and flower merge the same `x-app` mapping (one anchor, no copies)."""
    root = yaml.compose(COMPOSE_PATH.read_text())
    top = {key.value: value for key, value in root.value}
    service_nodes = {key.value: value for key, value in top["services"].value}
    for name in (*APP_SERVICES, "flower"):
        merged = [value for key, value in service_nodes[name].value if key.tag == MERGE_TAG]
        assert len(merged) == 1 and merged[0] is top["x-app"], f"{name} does not merge x-app"

    shared, services = compose["x-app"], compose["services"]
    for name in APP_SERVICES:
        for key in ("image", "build", "environment", "depends_on", "restart"):
            assert services[name][key] == shared[key], f"{name} overrides {key}"
    flower = services["flower"]
    assert (flower["image"], flower["build"]) == (shared["image"], shared["build"])
    assert shared["environment"].items() <= flower["environment"].items()


def test_services_wait_for_healthy_dependencies(services: dict[str, Any]) -> None:
    expected = {name: {"redis", "postgres"} for name in APP_SERVICES} | {"flower": {"redis"}}
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert set(depends_on) == expected.get(name, set()), name
        for dependency, condition in depends_on.items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], dependency


@pytest.mark.parametrize(
    ("name", "path"), [("redis", "/data"), ("postgres", "/var/lib/postgresql/data")]
)
def test_data_lives_in_a_named_volume(
    compose: dict[str, Any], services: dict[str, Any], name: str, path: str
) -> None:
    sources = {}
    for volume in services[name]["volumes"]:
        source, target = volume.split(":")[:2]
        sources[target] = source
    assert sources[path] in compose["volumes"]


def test_redis_keeps_the_queue_on_disk_and_never_evicts_it(services: dict[str, Any]) -> None:
    args = command(services["redis"], {})
    assert args[0] == "redis-server"
    pairs = set(zip(args, args[1:], strict=False))
    assert {
        ("--appendonly", "yes"),
        ("--appendfsync", "everysec"),
        ("--maxmemory-policy", "noeviction"),
    } <= pairs


def _named_values(node: object) -> list[tuple[str, object]]:
    """Every (key, value) pair of every mapping in the tree."""
    if isinstance(node, dict):
        pairs = [(str(key), value) for key, value in node.items()]
        return pairs + [pair for value in node.values() for pair in _named_values(value)]
    if isinstance(node, list):
        return [pair for item in node for pair in _named_values(item)]
    return []


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    secrets = [(key, value) for key, value in _named_values(compose) if SECRET_NAME.search(key)]
    assert {key for key, _ in secrets} >= {*REQUIRED_SECRETS, "MAIL_PASSWORD"}
    for key, value in secrets:
        assert isinstance(value, str), key
        found = references(value)
        assert len(found) == 1 and found[0].text == value, f"{key}: {value!r} is not one ${{VAR}}"
        # A secret may be required, or optional with an empty default; never a default value.
        assert found[0].operator in (None, "?", ":?") or not found[0].argument, key
    # Secrets inside values: a URL's password is a reference too.
    for value in strings(compose):
        for password in re.findall(r"://[^/:@\s]+:([^@\s]+)@", value):
            assert references(password)[0].text == password, value
    for value in strings(compose):
        for reference in references(value):
            if reference.name in REQUIRED_SECRETS:
                assert reference.operator == ":?", f"{reference.text} has to be required"


def test_compose_refuses_to_start_without_the_secrets(compose: dict[str, Any]) -> None:
    with pytest.raises(MissingVariable, match="SECRET_KEY"):
        interpolate(compose["x-app"]["environment"]["SECRET_KEY"], {})


def test_published_ports_come_from_the_env_file(services: dict[str, Any]) -> None:
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert set(published) == {"web", "flower", "mailpit"}
    for name, ports in published.items():
        for port in ports:
            match = re.fullmatch(r"(?:127\.0\.0\.1:)?(\$\{[^}]+\}):(\d+)", port)
            assert match, f"{name}: {port!r} is not ${{VAR}}:PORT"
            assert references(match[1])[0].name.startswith("HOST_PORT_"), port
    assert published["web"][0].endswith(":8000")
    # Monitoring and the mail catcher stay on the host's loopback.
    assert all(port.startswith("127.0.0.1:") for port in published["flower"] + published["mailpit"])


def _seconds(duration: str) -> float:
    """A Compose duration such as `30s`, `1m30s` or `1500ms`, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def test_the_worker_gets_time_to_finish_its_sends(services: dict[str, Any]) -> None:
    grace = _seconds(services["worker"]["stop_grace_period"])
    config = load_config("production", {"SECRET_KEY": "x" * 32}, "/tmp")
    default = config["CELERY_SOFT_SHUTDOWN_TIMEOUT"]
    assert grace > default
    configured = services["worker"]["environment"].get("CELERY_SOFT_SHUTDOWN_TIMEOUT")
    if configured is not None:
        assert grace > float(interpolate(str(configured), read_dotenv()))


def test_the_app_services_run_the_documented_commands(
    services: dict[str, Any], dotenv: dict[str, str]
) -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    worker, beat, flower = (
        command(services[name], dotenv) for name in ("worker", "beat", "flower")
    )
    assert worker[:4] == ["celery", "-A", "worker", "worker"]
    assert beat[:4] == ["celery", "-A", "worker", "beat"]
    assert flower == ["celery", "-A", "worker", "flower"]
    for args in (worker, beat):  # what docs/operations.md tells people to run
        assert shlex.join(args[:6]) in operations
    assert "deploy" not in services["beat"], "beat must run exactly once"

    assert command(services["web"], dotenv) == ["./bin/web"]
    script_path = ROOT / "bin" / "web"
    assert os.access(script_path, os.X_OK)
    script = script_path.read_text()
    migrate, serve = "flask --app web db upgrade", 'exec gunicorn --bind "0.0.0.0:${PORT:-8000}"'
    assert "set -eu" in script
    assert script.index(migrate) < script.index(serve)
    assert '"web:create_app()"' in script
    assert migrate in operations and 'gunicorn "web:create_app()"' in operations


def test_mailpit_is_the_default_smtp_server(compose: dict[str, Any]) -> None:
    environment = compose["x-app"]["environment"]
    assert interpolate(environment["MAIL_SERVER"], {}) == "mailpit"
    assert interpolate(environment["MAIL_PORT"], {}) == "1025"


def test_flower_asks_for_a_password(services: dict[str, Any]) -> None:
    environment = services["flower"]["environment"]
    assert environment["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            instructions.append((instruction.upper(), arguments.strip()))
    return instructions


def test_the_dockerfile_builds_a_slim_unprivileged_cacheable_image() -> None:
    instructions = _dockerfile()
    (base,) = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base

    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")

    def position(instruction: str, pattern: str) -> int:
        for index, (name, arguments) in enumerate(instructions):
            if name == instruction and re.search(pattern, arguments):
                return index
        raise AssertionError(f"no {instruction} matching {pattern!r} in the Dockerfile")

    # The lock alone, then the dependencies it pins, then the code, then the project without deps.
    assert (
        position("COPY", r"^requirements\.lock ")
        < position("RUN", r"pip install -r requirements\.lock")
        < position("COPY", r"^\. ")
        < position("RUN", r"pip install --no-deps")
    )
    assert ("EXPOSE", "8000") in instructions
    for instruction, arguments in instructions:
        if instruction in ("ENV", "ARG"):
            assert not SECRET_NAME.search(arguments), f"{instruction} {arguments}"

    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "instance"} <= set(ignored)


def test_env_example_sets_every_variable_the_compose_file_uses(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    used = {reference.name for value in strings(compose) for reference in references(value)}
    assert used - set(dotenv) == set(), "missing from .env.example"
    # The secrets are left empty, so that an unedited copy refuses to start; each refusal says
    # how to generate the value. Filled in, compose interpolates the whole file.
    for name in REQUIRED_SECRETS:
        assert dotenv[name] == "", name
    with pytest.raises(MissingVariable):
        for value in strings(compose):
            interpolate(value, dotenv)
    for value in strings(compose):
        for reference in references(value):
            if reference.name in REQUIRED_SECRETS:
                assert "python3 -c" in reference.argument, reference.text
    filled = dotenv | {name: "user:secret" for name in REQUIRED_SECRETS}
    for value in strings(compose):
        interpolate(value, filled)
    assert ".env" in (ROOT / ".gitignore").read_text().split()
