"""The code base stays clean: ruff's lint rules and formatting (settings in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.environment import ROOT


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
