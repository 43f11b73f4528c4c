"""The compose check, step by step, and the teardown that follows it whatever happened."""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import signal
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devtools.compose_check.commands import CommandFailed, Runner
from devtools.compose_check.docker import Docker
from devtools.compose_check.probes import (
    check_flower_login,
    find_email,
    post_name,
    wait_for_status,
)
from devtools.compose_check.project import (
    DOCKERFILE,
    ENV_EXAMPLE,
    ROOT,
    base_images,
    built_images,
    check_settings,
    env_values,
    load_compose,
    referenced_variables,
    render_env,
    required_variables,
)
from devtools.compose_check.report import CheckFailed, Step, Steps, say
from devtools.compose_check.stack import Stack
from devtools.compose_check.standins import BaseImages
from devtools.compose_check.teardown import Teardown
from devtools.ports import free_port
from devtools.waiting import wait_until
from devtools.webclient import Client

LOG_DIR = ROOT / "test-output" / "compose-check"
GENERATE_HINT = "python3 -c"  # every refusal must say how to generate the missing secret


def _default(path: str, fallback: str) -> str:
    return path if Path(path).exists() else fallback


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parser = argparse.ArgumentParser(
        prog="python -m devtools.compose_check",
        description="Run docker-compose.yml for real and check the stack end to end "
        "(docs/compose-check.md).",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the images built or loaded (stand-ins, the app's image) in Docker",
    )
    parser.add_argument(
        "--no-pull", action="store_true", help="use stand-ins without trying the registry"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=cache / "flasky-compose-check",
        help="where the rootfs and the stand-ins are cached (default: %(default)s)",
    )
    parser.add_argument("--clear-cache", action="store_true", help="empty the cache folder first")
    parser.add_argument(
        "--docker", default=_default("/usr/bin/docker", "docker"), help="the Docker CLI"
    )
    parser.add_argument(
        "--compose",
        default=_default("/usr/bin/docker-compose", "docker compose"),
        help="the Compose command (default: %(default)s)",
    )
    parser.add_argument(
        "--dockerd",
        default="dockerd",
        help="started (and stopped at the end) when no Docker daemon answers",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds to wait for every healthcheck (default: %(default)s)",
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    LOG_DIR.mkdir(parents=True)
    if args.clear_cache:
        shutil.rmtree(args.cache_dir, ignore_errors=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(LOG_DIR)
    docker = Docker(runner, shlex.split(args.docker))
    steps = Steps()
    teardown = Teardown(keep=args.keep, docker=docker)
    signal.signal(signal.SIGTERM, _interrupt)
    say(f"compose check of {ROOT} (command logs: {LOG_DIR})")
    outcome = 1
    try:
        check(args, runner, docker, steps, teardown)
        outcome = 0
    except KeyboardInterrupt:
        say("interrupted: tearing down")
        outcome = 130
    except (CheckFailed, CommandFailed, TimeoutError) as error:
        say(f"FAILED: {error}")
    except Exception:  # a bug of the check, or the machine: the traceback says which
        traceback.print_exc()
    finally:
        problems = teardown.run(steps)
        steps.summary()
    if problems and outcome == 0:
        outcome = 1
    say("compose check: " + ("PASSED" if outcome == 0 else "FAILED"))
    return outcome


def check(
    args: argparse.Namespace, runner: Runner, docker: Docker, steps: Steps, teardown: Teardown
) -> None:
    with steps.step("the Docker daemon and the tools") as step:
        if not docker.answers():
            teardown.dockerd = dockerd = runner.start(shlex.split(args.dockerd), log="dockerd")
            step.note(f"no Docker daemon answers: started {args.dockerd} (pid {dockerd.pid})")

            def daemon_answers() -> bool:
                if dockerd.poll() is not None:
                    log = (runner.log_dir / "dockerd.log").read_text()
                    raise CheckFailed(f"{args.dockerd} exited with {dockerd.returncode}:\n{log}")
                return docker.answers()

            wait_until(daemon_answers, 90, "the Docker daemon to answer", interval=1)
        compose_command = shlex.split(args.compose)
        version = runner.run([*compose_command, "version"], log="compose").output
        step.note(f"Docker {docker.server_version()} ({args.docker})")
        step.note(f"{version.splitlines()[0]} ({args.compose})")

    compose_text = (ROOT / "docker-compose.yml").read_text()
    compose = load_compose()
    example = ENV_EXAMPLE.read_text()
    required = required_variables(compose_text)
    teardown.work = Path(tempfile.mkdtemp(prefix="flasky-compose-check-"))
    settings = check_settings(example, compose_text, free_port)
    env_file = teardown.work / ".env"
    env_file.touch(mode=0o600)
    env_file.write_text(render_env(example, settings))
    project = f"flaskycheck{os.getpid()}"
    stack = Stack(
        runner, docker, compose_command, project, env_file, referenced_variables(compose_text)
    )
    teardown.stack = stack

    with steps.step("an unedited .env.example is refused, each secret with its hint") as step:
        check_refusals(stack, example, required, settings, teardown.work, step)

    base = BaseImages(docker, runner, args.cache_dir)
    teardown.base = base
    references = base_images(compose, DOCKERFILE.read_text())
    with steps.step(f"base images: {', '.join(references)}") as step:
        needed = base.missing(references, pull=not args.no_pull, step=step)
    if needed:
        base.provide(needed, steps.step)

    teardown.app_images = {image: docker.image_id(image) for image in built_images(compose)}
    with steps.step("docker-compose build (the project's Dockerfile, unchanged)"):
        stack.compose("build", timeout=1800)
    with steps.step("docker-compose up --detach"):
        stack.compose("up", "--detach", timeout=900)
    services = list(compose["services"])
    with steps.step("every container running, every healthcheck healthy") as step:
        stack.wait_healthy(services, args.timeout, step)
        step.note(f"web: {stack.exec('web', 'python', '--version')}")
        step.note(f"redis: {stack.exec('redis', 'redis-server', '--version')}")
        step.note(f"postgres: {stack.exec('postgres', 'postgres', '--version')}")

    check_the_stack(stack, settings, env_values(example), services, args.timeout, steps)


def check_refusals(
    stack: Stack,
    example: str,
    required: list[str],
    settings: dict[str, str],
    work: Path,
    step: Step,
) -> None:
    """`up` refuses the unedited .env.example; with one secret left empty, Compose names it and
    says how to generate it."""
    result = stack.compose(
        "up", "--no-start", "--no-build", env_file=ENV_EXAMPLE, check=False, timeout=120
    )
    if result.returncode == 0 or GENERATE_HINT not in result.output:
        raise CheckFailed(f"docker-compose up with .env.example did not refuse:\n{result.output}")
    step.note(f"unedited .env.example: {_last_line(result.output)}")
    for name in required:
        values = {other: settings[other] for other in required if other != name}
        path = work / f"without-{name}.env"
        path.write_text(render_env(example, {**values, name: ""}))
        result = stack.compose("config", "--quiet", env_file=path, check=False, timeout=120)
        line = _last_line(result.output)
        if result.returncode == 0 or name not in line or GENERATE_HINT not in line:
            raise CheckFailed(f"with {name} empty, docker-compose config said:\n{result.output}")
        step.note(f"{name} empty: {line}")


def _last_line(output: str) -> str:
    """Compose's message, from `in service "..."` on when it quotes the whole mapping first."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last[last.find(" in service ") + 1 :] if " in service " in last else last


def check_the_stack(
    stack: Stack,
    settings: dict[str, str],
    example: dict[str, str],
    services: list[str],
    timeout: float,
    steps: Steps,
) -> None:
    """The stack as its users see it: the form and its email, Flower's login, Redis restarted."""
    admin = example.get("FLASKY_ADMIN", "")
    if not admin:
        raise CheckFailed(".env.example sets no FLASKY_ADMIN: no email would be sent")
    site = Client(f"http://127.0.0.1:{settings['HOST_PORT_WEB']}")
    mailpit = Client(f"http://127.0.0.1:{settings['HOST_PORT_MAILPIT']}")
    run = secrets.token_hex(3)

    with steps.step("the name form (GET /, POST /) and its email in Mailpit's API") as step:
        name = f"Compose Check {run} first"
        post_name(site, name)
        message = find_email(mailpit, to=admin, name=name, timeout=90)
        step.note(f"{message['Subject']!r} to {admin}, Mailpit ID {message['ID']}")

    with steps.step("Flower: 401 without the login, 200 with it") as step:
        user, _, password = settings["FLOWER_BASIC_AUTH"].partition(":")
        flower = f"http://127.0.0.1:{settings['HOST_PORT_FLOWER']}"
        workers = check_flower_login(Client(flower), Client(flower, auth=(user, password)), 90)
        step.note(f"workers: {workers}")

    with steps.step("Redis stopped: /readyz 503, the form still answers") as step:
        stack.compose("stop", "redis", timeout=120)
        reply = wait_for_status(site, "/readyz", 503, 30)
        step.note(f"/readyz: 503 {' '.join(reply.body.split())[:100]}")
        during = f"Compose Check {run} during outage"
        post_name(site, during)
        step.note(f"posted {during!r}")

    with steps.step("Redis started again: healthy, /readyz 200, another name posted") as step:
        stack.compose("start", "redis", timeout=120)
        stack.wait_healthy(["redis"], 90, step)
        wait_for_status(site, "/readyz", 200, 60)
        after = f"Compose Check {run} after outage"
        post_name(site, after)
        step.note(f"posted {after!r}")

    with steps.step("both emails arrive (the first one re-published by the sweeper)") as step:
        for name in (during, after):
            message = find_email(mailpit, to=admin, name=name, timeout=240)
            step.note(f"{name!r}: in Mailpit, ID {message['ID']}")

    with steps.step("every healthcheck healthy again") as step:
        stack.wait_healthy(services, timeout, step)
