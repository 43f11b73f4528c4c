"""Undoing what a run started or made, whatever ended it: a failure, Ctrl-C, SIGTERM."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devtools.compose_check.commands import shielded, stop
from devtools.compose_check.docker import Docker
from devtools.compose_check.report import Step, Steps, say
from devtools.compose_check.stack import Stack
from devtools.compose_check.standins import LABEL, BaseImages


@dataclass
class Teardown:
    """What the run started or made, undone in this order: the compose project (containers,
    networks, volumes), the app's image, the base images, the .env files, the daemon."""

    keep: bool
    stack: Stack | None = None
    app_images: dict[str, str | None] = field(default_factory=dict)  # name -> id before
    base: BaseImages | None = None
    work: Path | None = None
    dockerd: subprocess.Popen[bytes] | None = None
    docker: Docker | None = None

    def run(self, steps: Steps) -> int:
        """Every action, each in its own step; returns how many problems were found."""
        actions = [
            ("teardown: compose down -v, nothing of the project left", self._down),
            ("teardown: remove the app's image", self._app_images),
            ("teardown: remove the stand-ins and their tags", self._base),
            ("teardown: remove the check's .env files", self._work),
            ("teardown: stop the dockerd the check started", self._dockerd),
        ]
        problems = 0
        with shielded():
            for title, action in actions:
                try:
                    with steps.step(title) as step:
                        for problem in action(step):
                            step.note(f"PROBLEM: {problem}")
                            problems += 1
                except Exception as error:  # one failed action must not stop the others
                    say(f"      PROBLEM: {error}")
                    problems += 1
        return problems

    def _down(self, step: Step) -> Iterator[str]:
        if self.stack:
            yield from self.stack.down()

    def _app_images(self, step: Step) -> Iterator[str]:
        if self.keep or not self.docker:
            step.note("kept (--keep)" if self.keep else "nothing to do")
            return
        for image, before in self.app_images.items():
            now = self.docker.image_id(image)
            # The check's: built by this run, or built on a stand-in (by an earlier --keep run).
            if now and (now != before or LABEL in self.docker.image_labels(image)):
                if not self.docker.remove_image(image):
                    yield f"could not remove {image}"
                step.note(f"removed {image}")
            if not before or before == now or not self.docker.image_id(before):
                continue
            if LABEL in self.docker.image_labels(before):
                if not self.docker.remove_image(before):
                    yield f"could not remove the earlier {image} ({before})"
                step.note(f"removed the earlier {image}, built on a stand-in")
            else:
                self.docker("tag", before, image)  # what the name meant before the run
                step.note(f"{image} names its earlier image again")

    def _base(self, step: Step) -> Iterator[str]:
        if self.keep:
            step.note("kept (--keep)")
        elif self.base:
            yield from self.base.remove()

    def _work(self, step: Step) -> Iterator[str]:
        if self.work:
            shutil.rmtree(self.work, ignore_errors=True)
            if self.work.exists():
                yield f"could not remove {self.work}"

    def _dockerd(self, step: Step) -> Iterator[str]:
        if self.dockerd:
            stop(self.dockerd)
            if self.dockerd.poll() is None:
                yield f"the daemon (pid {self.dockerd.pid}) still runs"
            step.note(f"stopped pid {self.dockerd.pid}")
        else:
            step.note("none started")
