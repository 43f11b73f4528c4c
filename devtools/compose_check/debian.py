"""A Debian rootfs made with debootstrap, for the stand-in images, and the apt sources it uses.

The mirror and the suites come from this machine's apt sources (deb822 `.sources` files and
one-line `.list` files), so that the stand-ins install from the mirror that answers here.
The rootfs is kept as a tarball in the check's cache: debootstrap runs once per mirror, suite
and debootstrap version.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devtools.compose_check.commands import Runner

SUITE = "bookworm"
VARIANT = "minbase"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ROOTFS_REVISION = 2  # raised when build_rootfs makes a different tarball: the cache is rebuilt
# Left out of the tarball: apt's downloads and package lists (the images fetch fresh lists).
ROOTFS_EXCLUDES = (
    "./var/cache/apt/archives/*.deb",
    "./var/cache/apt/*.bin",
    "./var/lib/apt/lists/*",
)
SOURCES_PATHS = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


@dataclass(frozen=True)
class Source:
    """One `deb` line: where, which suite, which components."""

    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def parse_one_line(text: str) -> list[Source]:
    """`deb [options] URI SUITE COMPONENT...` lines (sources.list format); deb-src skipped."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        if rest.startswith("["):
            rest = rest.partition("]")[2].strip()
        uri, suite, *components = rest.split()
        found.append(Source(uri.rstrip("/"), suite, tuple(components)))
    return found


def parse_deb822(text: str) -> list[Source]:
    """deb822 stanzas (`.sources` files): Types, URIs, Suites, Components; Enabled: no skipped."""
    found = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and key:  # a continuation line
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        components = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                found.append(Source(uri.rstrip("/"), suite, components))
    return found


def machine_sources(paths: tuple[Path, ...] = SOURCES_PATHS) -> list[Source]:
    """This machine's apt sources, from the files apt reads (other names are ignored by apt)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.glob("*.list")) + sorted(path.glob("*.sources"))
        elif path.is_file():
            files.append(path)
    found = []
    for file in files:
        parse = parse_deb822 if file.suffix == ".sources" else parse_one_line
        found += parse(file.read_text())
    return found


def suite_sources(sources: list[Source], suite: str = SUITE) -> list[Source]:
    """The sources of `suite` and its companions (`bookworm-updates`, `bookworm-security`),
    main component only (what the stand-ins install is all in main)."""
    chosen = []
    for source in sources:
        of_suite = source.suite == suite or source.suite.startswith(f"{suite}-")
        if of_suite and "main" in source.components:
            main = Source(source.uri, source.suite, ("main",))
            if main not in chosen:
                chosen.append(main)
    return chosen or [Source(DEFAULT_MIRROR, suite, ("main",))]


def mirror(sources: list[Source], suite: str = SUITE) -> str:
    """The mirror debootstrap fetches `suite` from: the first source of the suite itself."""
    return next((source.uri for source in sources if source.suite == suite), DEFAULT_MIRROR)


def rootfs_key(mirror_uri: str, debootstrap_version: str) -> str:
    """What the cached rootfs depends on, in its file name."""
    text = f"{SUITE} {VARIANT} {mirror_uri} {debootstrap_version} {ROOTFS_REVISION}"
    return f"{SUITE}-{VARIANT}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below `root`, deepest first (from /proc/self/mountinfo)."""
    found = []
    resolved = root.resolve()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like written as octal escapes.
        point = Path(line.split()[4].encode().decode("unicode_escape"))
        if point == resolved or resolved in point.parents:
            found.append(point)
    return sorted(found, key=lambda point: len(point.parts), reverse=True)


def remove_tree(runner: Runner, root: Path) -> None:
    """Remove a debootstrap target, unmounting first whatever is still mounted in it.

    debootstrap mounts /proc (and, in some containers, /dev) inside its target and unmounts
    them when it ends; killed, it may not have. Deleting through such a mount would delete
    the machine's own files, so nothing is deleted while a mount remains.
    """
    for point in mounts_under(root):
        runner.run(["umount", "--lazy", point], log="debootstrap", check=False)
    left = mounts_under(root)
    if left:
        raise RuntimeError(f"not removing {root}: still mounted: {', '.join(map(str, left))}")
    shutil.rmtree(root, ignore_errors=True)


def debootstrap_version(runner: Runner) -> str:
    return runner.run(["debootstrap", "--version"], log="debootstrap").output.strip()


def build_rootfs(runner: Runner, mirror_uri: str, tarball: Path) -> None:
    """debootstrap `SUITE` (variant `VARIANT`) from `mirror_uri` and tar it as `tarball`.

    Written to a temporary name in the same folder and renamed when complete, so that an
    interrupted run never leaves a truncated tarball behind for the next run to trust.
    """
    tarball.parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
    partial = tarball.with_name(tarball.name + ".partial")
    try:
        runner.run(
            ["debootstrap", f"--variant={VARIANT}", SUITE, root, mirror_uri],
            log="debootstrap",
            timeout=1800,
        )
        left = mounts_under(root)
        if left:
            raise RuntimeError(f"debootstrap left mounts in {root}: {left}")
        runner.run(
            [
                "tar",
                "--numeric-owner",
                "--one-file-system",
                *(f"--exclude={pattern}" for pattern in ROOTFS_EXCLUDES),
                "-C",
                root,
                "-cf",
                partial,
                ".",
            ],
            log="debootstrap",
            timeout=600,
        )
        partial.rename(tarball)
        for old in tarball.parent.glob("*.tar"):
            if old != tarball:
                old.unlink()  # an earlier key's: nothing will read it again
    finally:
        partial.unlink(missing_ok=True)
        remove_tree(runner, root)
