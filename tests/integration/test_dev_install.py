"""dev.py's set-up steps: one line each on the console, the command's output in the install
log, and on failure the log's last 20 lines and its path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import dev

COUNT_TO_30 = "import sys\nfor n in range(30): print('line', n)\nsys.exit({status})"


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "dev-py-install.log"
    path.write_text("")
    monkeypatch.setattr(dev, "INSTALL_LOG", path)
    return path


def test_a_step_says_one_line_and_logs_its_output(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev.setup_step("counting", [sys.executable, "-c", COUNT_TO_30.format(status=0)], note=" (30)")
    out, err = capsys.readouterr()
    assert (out, err) == ("dev    | counting (30)\n", "")
    lines = log.read_text().splitlines()
    assert lines[0].startswith(f"$ {sys.executable} -c ")
    assert lines[-30:] == [f"line {n}" for n in range(30)]


def test_a_failed_step_shows_the_end_of_its_log_and_where_it_is(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as failure:
        dev.setup_step(
            "counting", [sys.executable, "-c", COUNT_TO_30.format(status=3)], hint=" (try again)"
        )
    out, err = capsys.readouterr()
    assert out == "dev    | counting\n"
    assert err.splitlines() == [f"line {n}" for n in range(10, 30)]
    message = str(failure.value)
    assert message.startswith("dev.py: counting: failed with exit status 3 (try again); ")
    assert message.endswith(f"all of it is in {log}")
