"""The Docker CLI, for what the check asks of it: images, and the objects of a compose project."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from devtools.compose_check.commands import Result, Runner

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class Docker:
    def __init__(self, runner: Runner, command: Sequence[str]) -> None:
        self.runner = runner
        self.command = list(command)

    def __call__(self, *args: str, log: str = "docker", **options: Any) -> Result:
        return self.runner.run([*self.command, *args], log=log, **options)

    def answers(self) -> bool:
        return self("info", check=False, timeout=30).returncode == 0

    def server_version(self) -> str:
        return self("version", "--format", "{{.Server.Version}}").output.strip()

    def image_id(self, ref: str) -> str | None:
        result = self("image", "inspect", "--format", "{{.Id}}", ref, check=False, quiet=True)
        return result.output.strip() if result.returncode == 0 else None

    def image_labels(self, ref: str) -> dict[str, str]:
        result = self("image", "inspect", "--format", "{{json .Config.Labels}}", ref, check=False)
        if result.returncode != 0:
            return {}
        return json.loads(result.output) or {}

    def remove_image(self, ref: str) -> bool:
        """`docker rmi`: untags `ref`, and deletes the image if nothing else names or uses it."""
        return self("rmi", ref, check=False, timeout=300).returncode == 0

    def project_objects(self, project: str) -> dict[str, list[str]]:
        """The containers, volumes and networks labelled as `project`'s by Compose."""
        label = f"label={PROJECT_LABEL}={project}"
        found = {
            "containers": self("ps", "--all", "--quiet", "--filter", label, quiet=True),
            "volumes": self("volume", "ls", "--quiet", "--filter", label, quiet=True),
            "networks": self("network", "ls", "--quiet", "--filter", label, quiet=True),
        }
        return {kind: result.output.split() for kind, result in found.items()}

    def containers(self, project: str) -> list[dict[str, Any]]:
        """`docker inspect` of the project's containers."""
        ids = self.project_objects(project)["containers"]
        if not ids:
            return []
        return json.loads(self("inspect", *ids, timeout=60, quiet=True).output)
