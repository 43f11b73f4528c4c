"""What the check reads of the project: the base images docker-compose.yml and the Dockerfile
name, the variables the compose file interpolates, and the .env file it gives Compose."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from devtools.environment import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; `$$` is a literal $.
_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<operator>:?[-?])?[^}]*\}")
_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)", re.IGNORECASE | re.MULTILINE)


def referenced_variables(compose_text: str) -> list[str]:
    """Every variable the compose file interpolates, in order of first use."""
    names = [match["name"] for match in _REFERENCE.finditer(compose_text) if match["name"]]
    return list(dict.fromkeys(names))


def required_variables(compose_text: str) -> list[str]:
    """The variables Compose refuses to start without (`${NAME:?...}` / `${NAME?...}`)."""
    names = [
        match["name"]
        for match in _REFERENCE.finditer(compose_text)
        if match["name"] and (match["operator"] or "").endswith("?")
    ]
    return list(dict.fromkeys(names))


def base_images(compose: Mapping[str, Any], dockerfile_text: str) -> list[str]:
    """The images that must exist before `docker compose up --build`: every service's image
    that is not built here, and the Dockerfile's FROM images (not its own build stages)."""
    stages: set[str] = set()
    found: list[str] = []
    for match in _FROM.finditer(dockerfile_text):
        image = match["image"]
        stage = re.search(r"\s+AS\s+(\S+)", dockerfile_text[match.end() :].splitlines()[0], re.I)
        if image not in stages and image.lower() != "scratch":
            found.append(image)
        if stage:
            stages.add(stage[1])
    for service in compose.get("services", {}).values():
        if "build" not in service and service.get("image"):
            found.append(service["image"])
    return list(dict.fromkeys(found))


def built_images(compose: Mapping[str, Any]) -> list[str]:
    """The image names the compose file builds (`build:` with `image:`)."""
    names = [
        service["image"]
        for service in compose.get("services", {}).values()
        if "build" in service and service.get("image")
    ]
    return list(dict.fromkeys(names))


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def generated_secret(name: str) -> str:
    """A value for a required secret; `..._BASIC_AUTH` settings are `user:password`."""
    if name.endswith("BASIC_AUTH"):
        return f"check:{secrets.token_hex(16)}"
    return secrets.token_hex(24)  # letters and digits: safe inside DATABASE_URL


def render_env(example: str, values: Mapping[str, str]) -> str:
    """.env.example with `values` set: each KEY=VALUE line of a key in `values` rewritten,
    comments and every other line kept; keys the example lacks are added at the end."""
    lines, done = [], set()
    for line in example.splitlines():
        key, separator, _ = line.partition("=")
        key = key.strip()
        if separator and not key.startswith("#") and key in values:
            line = f"{key}={values[key]}"
            done.add(key)
        lines.append(line)
    lines += [f"{key}={value}" for key, value in values.items() if key not in done]
    return "\n".join(lines) + "\n"


def env_keys(example: str) -> list[str]:
    """The keys set by KEY=VALUE lines."""
    keys = []
    for line in example.splitlines():
        key, separator, _ = line.partition("=")
        if separator and not key.strip().startswith("#"):
            keys.append(key.strip())
    return keys


def check_settings(example: str, compose_text: str, free_port: Callable[[], int]) -> dict[str, str]:
    """What the check sets in its .env: every required secret generated, every published port
    (HOST_PORT_*) a free one, so that it runs beside anything already listening on 8000."""
    values = {name: generated_secret(name) for name in required_variables(compose_text)}
    for key in env_keys(example):
        if key.startswith("HOST_PORT_"):
            values[key] = str(free_port())
    return values


def env_values(text: str) -> dict[str, str]:
    """KEY=VALUE pairs of a .env file, one pair of surrounding quotes removed."""
    values = {}
    for line in text.splitlines():
        key, separator, value = line.partition("=")
        if not separator or key.strip().startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
