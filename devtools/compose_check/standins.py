"""The base images of the stack: used as they are when present or pullable, otherwise replaced
by local stand-ins built from a debootstrap'd Debian and Debian's packages (images/).

Each stand-in is built under a keyed name, `flasky-compose-check/<name>:<key>`, the key being a
hash of everything it is made from (the rootfs, the apt sources, the files under images/, this
machine's extra CA certificates); then tagged with the name the project uses (`redis:7`...).
The built stand-ins are saved, all four in one `docker save` tarball, in the cache folder: a
later run loads them (seconds) instead of building them again (minutes).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from devtools.compose_check import debian
from devtools.compose_check.commands import Runner
from devtools.compose_check.docker import Docker
from devtools.compose_check.report import CheckFailed, Step

IMAGES = Path(__file__).resolve().parent / "images"
REPOSITORY = "flasky-compose-check"
LABEL = "org.flasky.compose-check.standin"
EXTRA_CA_FOLDER = Path("/usr/local/share/ca-certificates")

StepFactory = Callable[[str], AbstractContextManager[Step]]


@dataclass(frozen=True)
class StandIn:
    name: str  # its folder under images/
    repository: str  # the official image's repository it stands in for
    base: str  # the stand-in its Dockerfile builds on ("" for the Debian base)
    about: str


DEBIAN = StandIn("debian", "", "", "the debootstrap'd rootfs with apt set up")
STANDINS = (
    StandIn("python", "python", "debian", "Debian bookworm's CPython 3.11, pip"),
    StandIn("redis", "redis", "debian", "Debian bookworm's Redis 7.0"),
    StandIn(
        "postgres",
        "postgres",
        "debian",
        "Debian bookworm's PostgreSQL 15 (Debian ships no 16: tagged postgres:16 only "
        "locally, as a stand-in)",
    ),
    StandIn(
        "mailpit",
        "axllent/mailpit",
        "python",
        "a Python SMTP catcher (aiosmtpd) with Mailpit's message API",
    ),
)


def split_reference(reference: str) -> tuple[str, str]:
    """`redis:7` -> ("redis", "7"); `docker.io/library/redis` -> ("redis", "latest")."""
    name, tag = reference, "latest"
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = reference.rsplit(":", 1)
    for prefix in ("docker.io/", "index.docker.io/"):
        name = name.removeprefix(prefix)
    return name.removeprefix("library/"), tag


def standin_for(reference: str) -> StandIn | None:
    repository, _ = split_reference(reference)
    return next((standin for standin in STANDINS if standin.repository == repository), None)


def extra_ca_certificates(folder: Path = EXTRA_CA_FOLDER) -> list[Path]:
    """The certificates update-ca-certificates adds from its local folder on this machine."""
    return sorted(folder.rglob("*.crt")) if folder.is_dir() else []


def images_key(rootfs_key: str, sources: str, certificates: list[Path]) -> str:
    digest = hashlib.sha256(f"{rootfs_key}\n{sources}\n".encode())
    for path in sorted(IMAGES.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"{path.relative_to(IMAGES)}\n".encode())
            digest.update(path.read_bytes())
    for certificate in certificates:
        digest.update(certificate.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class BaseImages:
    """The base images of one run, and what the run added to Docker (to remove at the end)."""

    docker: Docker
    runner: Runner
    cache_dir: Path
    references: list[str] = field(default_factory=list)  # the project's base images

    def missing(self, references: list[str], pull: bool, step: Step) -> list[str]:
        """The references that need a stand-in: not in Docker (or ours from an earlier run,
        to be tagged again from this run's) and, with `pull`, not pullable either."""
        self.references = list(references)
        needed = []
        for reference in references:
            if self.docker.image_id(reference) and LABEL not in self.docker.image_labels(reference):
                step.note(f"{reference}: present in Docker, used as it is")
            else:
                needed.append(reference)
        if pull:
            for reference in list(needed):
                result = self.docker("pull", reference, log="pull", check=False, timeout=180)
                if result.returncode != 0:
                    last = (result.output.strip().splitlines() or ["?"])[-1]
                    step.note(f"{reference}: cannot be pulled ({last})")
                    break  # the registry is unreachable: do not wait for it once per image
                step.note(f"{reference}: pulled")
                needed.remove(reference)
        for reference in needed:
            if standin_for(reference) is None:
                raise CheckFailed(
                    f"{reference} is not in Docker, cannot be pulled, and the "
                    "check has no stand-in for it"
                )
        return needed

    def provide(self, references: list[str], steps: StepFactory) -> None:
        """Stand-ins for `references`, from Docker, the cache or built; tagged as named."""
        with steps("stand-ins: sources and cache key") as step:
            sources = debian.suite_sources(debian.machine_sources())
            mirror = debian.mirror(sources)
            rootfs_key = debian.rootfs_key(mirror, debian.debootstrap_version(self.runner))
            sources_text = "".join(source.line() + "\n" for source in sources)
            certificates = extra_ca_certificates()
            key = images_key(rootfs_key, sources_text, certificates)
            step.note(f"Debian {debian.SUITE} from {mirror}; stand-ins' key {key}")
        keyed = {standin.name: f"{REPOSITORY}/{standin.name}:{key}" for standin in STANDINS}
        saved = self.cache_dir / f"standins-{key}.tar"
        if all(self.docker.image_id(image) for image in keyed.values()):
            with steps("stand-ins: already in Docker (an earlier --keep)") as step:
                step.note(", ".join(keyed.values()))
        elif saved.is_file():
            with steps("stand-ins: load from the cache") as step:
                self.docker("load", "--input", saved, log="standins", timeout=900)
                step.note(f"{saved} ({saved.stat().st_size / 2**20:.0f} MiB)")
        else:
            tarball = self.cache_dir / "rootfs" / f"{rootfs_key}.tar"
            if tarball.is_file():
                with steps("rootfs: cached") as step:
                    step.note(str(tarball))
            else:
                with steps(f"rootfs: debootstrap {debian.SUITE} ({debian.VARIANT})") as step:
                    debian.build_rootfs(self.runner, mirror, tarball)
                    step.note(f"{tarball} ({tarball.stat().st_size / 2**20:.0f} MiB)")
            self._build(keyed, key, tarball, rootfs_key, sources_text, certificates, steps)
            with steps("stand-ins: save to the cache") as step:
                self._save(list(keyed.values()), saved)
                step.note(f"{saved} ({saved.stat().st_size / 2**20:.0f} MiB)")
        with steps("stand-ins: tag as the project names them") as step:
            for reference in references:
                standin = standin_for(reference)
                assert standin is not None  # missing() said so
                self.docker("tag", keyed[standin.name], reference)
                step.note(f"{reference} <- {keyed[standin.name]}: {standin.about}")

    def _build(
        self,
        keyed: dict[str, str],
        key: str,
        tarball: Path,
        rootfs_key: str,
        sources_text: str,
        certificates: list[Path],
        steps: StepFactory,
    ) -> None:
        rootfs = f"{REPOSITORY}/rootfs:{rootfs_key}"
        with steps("rootfs: docker import"):
            self.docker("import", tarball, rootfs, log="standins", timeout=900)
        debian_image = f"{REPOSITORY}/debian:{key}"
        images = {"debian": debian_image, **keyed}
        with tempfile.TemporaryDirectory(prefix="compose-check-") as work:
            for standin in (DEBIAN, *STANDINS):
                context = Path(work) / standin.name
                shutil.copytree(IMAGES / standin.name, context)
                arguments = {"ROOTFS": rootfs} if standin is DEBIAN else {}
                if standin is DEBIAN:
                    (context / "sources.list").write_text(sources_text)
                if standin.base == "debian":
                    arguments["BASE"] = images["debian"]
                if standin.base == "python":
                    arguments["PYTHON_IMAGE"] = images["python"]
                if standin.name == "python":
                    _add_certificates(context / "extra-ca-certificates", certificates)
                with steps(f"stand-in build: {standin.name}") as step:
                    self._docker_build(context, images[standin.name], arguments)
                    step.note(standin.about)

    def _docker_build(self, context: Path, tag: str, arguments: dict[str, str]) -> None:
        """`docker build` with the host's network: apt and pip reach this machine's mirror and
        proxies as the machine itself does (a build-time workaround of the check only)."""
        build_args = [
            item for name, value in arguments.items() for item in ("--build-arg", f"{name}={value}")
        ]
        self.docker(
            "build",
            "--network",
            "host",
            "--force-rm",
            *build_args,
            "--tag",
            tag,
            context,
            log="standins",
            timeout=1800,
            env={**self.runner.env, "DOCKER_BUILDKIT": "0"},
        )

    def _save(self, images: list[str], saved: Path) -> None:
        partial = saved.with_name(saved.name + ".partial")
        try:
            self.docker("save", "--output", partial, *images, log="standins", timeout=900)
            partial.rename(saved)
        finally:
            partial.unlink(missing_ok=True)
        for old in saved.parent.glob("standins-*.tar"):
            if old != saved:
                old.unlink()  # an older key's: nothing will load it again

    def remove(self) -> Iterator[str]:
        """Every image of the check out of Docker, this run's and an earlier --keep's: the
        project's names where they name a stand-in (a real image stays), every
        flasky-compose-check/ image; yields what could not be removed."""
        for reference in self.references:
            if LABEL in self.docker.image_labels(reference) and not self.docker.remove_image(
                reference
            ):
                yield f"could not untag {reference}"
        listing = self.docker(
            "images", "--format", "{{.Repository}}:{{.Tag}}", f"{REPOSITORY}/*", quiet=True
        )
        for image in listing.output.split():
            if not self.docker.remove_image(image):
                yield f"could not remove {image}"
        # What a failed build of a stand-in, or of the app on one, left behind: untagged
        # images, which carry the stand-ins' label (the app's image inherits it).
        self.docker("image", "prune", "--force", "--filter", f"label={LABEL}", check=False)


def _add_certificates(folder: Path, certificates: list[Path]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "README").write_text("Copied here by the compose check; may be empty.\n")
    for number, certificate in enumerate(certificates):
        shutil.copyfile(certificate, folder / f"{number:02d}-{certificate.name}")
