"""The .eml files of the catcher's folder: which there are, in which order, and one by name.

A message's name is its file name without `.eml`. A name from a URL is only ever looked up
among the names the folder lists, never joined to the folder's path, so no name can reach a
file outside it ("../x", an absolute path, a symlink: none of them is listed).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SUFFIX = ".eml"

# devtools/smtp_catcher.py's file names start with the UTC time of arrival.
_CATCHER_STAMP = re.compile(r"(\d{8}T\d{6}\.\d{6})-")


@dataclass(frozen=True)
class CaughtFile:
    name: str  # the file name without .eml: the message's name in URLs
    path: Path
    received: datetime  # UTC
    size: int


def caught_files(folder: Path) -> list[CaughtFile]:
    """Every message in `folder`, newest first; none when the folder does not exist (yet).

    Only regular files named *.eml count: not the catcher's temporary `.NAME.tmp` files, not
    hidden files, not symlinks or folders.
    """
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    files = []
    for entry in entries:
        if not entry.name.endswith(SUFFIX) or entry.name.startswith("."):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
        except OSError:  # removed meanwhile
            continue
        files.append(
            CaughtFile(
                name=entry.name.removesuffix(SUFFIX),
                path=Path(entry.path),
                received=_received(entry.name, stat.st_mtime),
                size=stat.st_size,
            )
        )
    return sorted(files, key=lambda f: (f.received, f.name), reverse=True)


def find(folder: Path, name: str) -> CaughtFile | None:
    """The message called `name`, if the folder lists it."""
    return next((f for f in caught_files(folder) if f.name == name), None)


def _received(file_name: str, mtime: float) -> datetime:
    """When the catcher received the message: the time in its name, else the file's mtime (a
    file put there by hand)."""
    match = _CATCHER_STAMP.match(file_name)
    if match:
        try:
            return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
        except ValueError:  # 20261399T... matches the pattern but is no time
            pass
    return datetime.fromtimestamp(mtime, UTC)
