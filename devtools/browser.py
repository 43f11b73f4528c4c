"""The Chromium the browser tests drive (standard library only: dev.py looks for one before it
runs pytest, tests/integration/browser/conftest.py launches it).

An installed Chromium or Chrome is used first (Debian's /usr/bin/chromium in CI); without one,
Playwright's own build, which `python -m playwright install chromium` downloads into the user's
cache without root.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MACOS_APPS = (
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
PLAYWRIGHT_INSTALL = ".venv/bin/python -m playwright install chromium"


def installed_chromium() -> str | None:
    """FLASKY_CHROMIUM if set, else the first Chromium or Chrome on the PATH (or, on macOS, in
    /Applications), else None."""
    chosen = os.environ.get("FLASKY_CHROMIUM")
    if chosen:
        return chosen
    for name in NAMES:
        if found := shutil.which(name):
            return found
    if platform.system() == "Darwin":
        return next((app for app in MACOS_APPS if os.access(app, os.X_OK)), None)
    return None


def how_to_get_chromium(system: str, debian: bool) -> str:
    """One line: how to get a Chromium on this platform (`debian`: apt-get works there)."""
    if system == "Linux" and debian:
        other = "or, as root, apt-get install chromium"
    elif system == "Darwin":
        other = "or install Google Chrome"
    else:
        other = "or install your system's chromium package"
    return (
        f"no Chromium found, so the browser tests will fail: {PLAYWRIGHT_INSTALL}"
        f" downloads one (no root needed), {other} (FLASKY_CHROMIUM=path picks another)"
    )


def how_to_get_chromium_here() -> str:
    return how_to_get_chromium(platform.system(), Path("/etc/debian_version").exists())
