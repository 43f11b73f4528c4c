"""dev.py's pure parts: the banner's line about mail and the set-up's summary of pip's output."""

from __future__ import annotations

from pathlib import Path

import pytest

import dev

MAILDIR = Path("/work/instance/mail")


@pytest.mark.parametrize("server", ["127.0.0.1", "localhost"])
def test_mail_goes_to_eml_files_when_it_goes_to_the_catcher(server: str) -> None:
    line = dev.mail_banner({"MAIL_SERVER": server, "MAIL_PORT": "1025"}, 1025, MAILDIR)
    assert line == f"mail:   to the SMTP catcher at {server}:1025: .eml files in {MAILDIR}"


@pytest.mark.parametrize(
    ("server", "port"),
    [("127.0.0.1", "2525"), ("smtp.example.com", "1025"), ("smtp.example.com", "587")],
)
def test_mail_sent_elsewhere_is_not_said_to_be_in_eml_files(server: str, port: str) -> None:
    line = dev.mail_banner({"MAIL_SERVER": server, "MAIL_PORT": port}, 1025, MAILDIR)
    assert line.startswith(f"mail:   to {server}:{port} (MAIL_SERVER, MAIL_PORT from your env")
    assert "no .eml files" in line and str(MAILDIR) not in line


def test_the_summary_counts_what_pip_installed() -> None:
    output = (
        "Collecting flask\n...\nSuccessfully installed blinker-1.9.0 flask-3.1.3 flasky-0.1.0\n"
    )
    assert dev.installed_summary(output).startswith("installed 3 packages (log: ")
    assert dev.installed_summary("Successfully installed flasky-0.1.0").startswith(
        "installed 1 package (log: "
    )
    assert dev.installed_summary("Requirement already satisfied: flask").startswith(
        "nothing new to install"
    )
