"""The compose project of one run: docker-compose with the check's own .env file and project
name, the wait for every healthcheck, and the teardown that leaves nothing behind."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from devtools.compose_check.commands import Result, Runner
from devtools.compose_check.docker import SERVICE_LABEL, Docker
from devtools.compose_check.project import COMPOSE_FILE, ROOT
from devtools.compose_check.report import CheckFailed, Step

MAX_RESTARTS = 3  # more than this while waiting: the container is crash-looping


def compose_environment(variables: Sequence[str]) -> dict[str, str]:
    """This process's environment without what would override the .env file: the variables
    the compose file interpolates, and Compose's own COMPOSE_* settings."""
    drop = set(variables)
    return {
        name: value
        for name, value in os.environ.items()
        if name not in drop and not name.startswith("COMPOSE_")
    }


class Stack:
    def __init__(
        self,
        runner: Runner,
        docker: Docker,
        compose: Sequence[str],
        project: str,
        env_file: Path,
        variables: Sequence[str],
    ) -> None:
        self.runner = runner
        self.docker = docker
        self.command = list(compose)
        self.project = project
        self.env_file = env_file
        self.env = compose_environment(variables)

    def compose(
        self, *args: str, env_file: Path | None = None, timeout: float = 900, check: bool = True
    ) -> Result:
        """docker-compose on the project's file, with this run's project name and .env."""
        return self.runner.run(
            [
                *self.command,
                "--project-name",
                self.project,
                "--project-directory",
                ROOT,
                "--file",
                COMPOSE_FILE,
                "--env-file",
                env_file or self.env_file,
                *args,
            ],
            log="compose",
            env=self.env,
            timeout=timeout,
            check=check,
        )

    def containers(self) -> dict[str, dict[str, Any]]:
        """service -> its container's `docker inspect` (one container per service here)."""
        return {
            container["Config"]["Labels"][SERVICE_LABEL]: container
            for container in self.docker.containers(self.project)
        }

    def container_id(self, service: str) -> str:
        return str(self.containers()[service]["Id"])

    def wait_healthy(self, services: Sequence[str], timeout: float, step: Step) -> None:
        """Until every service's container runs and every healthcheck says healthy (the
        compose file's, or the image's own, as Mailpit's); each service noted when it is."""
        begun = time.monotonic()
        ready: set[str] = set()
        while True:
            containers = self.containers()
            pending = []
            for service in services:
                container = containers.get(service)
                if container is None:
                    pending.append(f"{service}: no container")
                    continue
                state = container["State"]
                health = (state.get("Health") or {}).get("Status")
                if container.get("RestartCount", 0) > MAX_RESTARTS:
                    raise CheckFailed(
                        f"{service} restarted {container['RestartCount']} times:\n"
                        + self.logs(service)
                    )
                if state["Status"] == "running" and health in (None, "healthy"):
                    if service not in ready:
                        ready.add(service)
                        what = "healthy" if health else "running (no healthcheck)"
                        step.note(f"{service} {what} after {time.monotonic() - begun:.1f}s")
                else:
                    pending.append(f"{service}: {state['Status']}, health {health}")
                    ready.discard(service)
            if not pending:
                return
            if time.monotonic() - begun > timeout:
                raise CheckFailed(
                    f"not healthy after {timeout:g}s: {'; '.join(pending)}\n"
                    + "\n".join(self.logs(item.split(":")[0]) for item in pending)
                )
            time.sleep(2)

    def logs(self, service: str, lines: int = 40) -> str:
        result = self.compose("logs", "--no-color", f"--tail={lines}", service, check=False)
        return f"--- last {lines} log lines of {service} ---\n{result.output.rstrip()}"

    def exec(self, service: str, *args: str) -> str:
        """A command in the service's running container, as root."""
        return self.docker("exec", self.container_id(service), *args, timeout=60).output.strip()

    def down(self) -> Iterator[str]:
        """`docker compose down -v`, then whatever still carries the project's label removed
        by hand; yields what could not be removed."""
        self.compose("down", "--volumes", "--remove-orphans", timeout=300, check=False)
        left = self.docker.project_objects(self.project)
        removals = {
            "containers": ("rm", "--force", "--volumes"),
            "volumes": ("volume", "rm", "--force"),
            "networks": ("network", "rm"),
        }
        for kind, ids in left.items():
            if ids:
                self.docker(*removals[kind], *ids, check=False, timeout=120)
        for kind, ids in self.docker.project_objects(self.project).items():
            if ids:
                yield f"{kind} left: {' '.join(ids)}"
