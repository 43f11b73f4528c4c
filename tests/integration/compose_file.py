"""docker-compose.yml and .env.example as Docker Compose reads them, for tests without Docker.

`interpolate()` follows Compose's rules for the forms the file uses: `$$` is a literal `$`,
`${VAR}`, `${VAR:-default}` / `${VAR-default}`, `${VAR:?error}` / `${VAR?error}`, and `$VAR`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devtools.environment import ROOT

COMPOSE_PATH = ROOT / "docker-compose.yml"
ENV_EXAMPLE_PATH = ROOT / ".env.example"

_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Reference:
    """One `${...}` (or `$NAME`) in a value: the variable, its operator and what follows it."""

    text: str
    name: str
    operator: str | None  # None, "-", ":-", "?" or ":?"
    argument: str


class MissingVariable(Exception):
    """A `${VAR:?error}` or `${VAR?error}` whose variable is not set: Compose refuses to run."""


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_PATH.read_text())


def read_dotenv(path: Path = ENV_EXAMPLE_PATH) -> dict[str, str]:
    """KEY=VALUE lines; comments and blank lines skipped, one pair of quotes removed."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        assert separator, f"{path.name}: not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def references(text: str) -> list[Reference]:
    found = []
    for match in _TOKEN.finditer(text):
        if match["escaped"]:
            continue
        name = match["braced"] or match["plain"]
        found.append(Reference(match[0], name, match["operator"], match["argument"] or ""))
    return found


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        operator, argument = match["operator"], match["argument"] or ""
        value = env.get(name)
        if operator in (":-", ":?"):
            missing = not value
        elif operator in ("-", "?"):
            missing = value is None
        else:
            return value or ""
        if not missing:
            return value or ""
        if operator.endswith("?"):
            raise MissingVariable(f"{name}: {argument}")
        return argument

    return _TOKEN.sub(substitute, text)


def strings(node: object) -> Iterator[str]:
    """Every string value in a loaded YAML tree (Compose interpolates values, not keys)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def command(service: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The service's `command` as the argument list Compose would run."""
    raw = service["command"]
    args = shlex.split(raw) if isinstance(raw, str) else list(raw)
    return [interpolate(str(arg), env) for arg in args]


def healthcheck(service: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The service's healthcheck test as an argument list (CMD-SHELL runs through /bin/sh)."""
    kind, *args = [interpolate(str(arg), env) for arg in service["healthcheck"]["test"]]
    if kind == "CMD":
        return args
    assert kind == "CMD-SHELL" and len(args) == 1, f"unexpected healthcheck test {kind!r}"
    return ["/bin/sh", "-c", args[0]]
