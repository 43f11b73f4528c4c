"""The compose check's parsing (devtools/compose_check): apt sources, the compose file and
.env files, image references, and the Mailpit stand-in's JSON. The check itself runs Docker:
`make compose-check` (docs/compose-check.md)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from email.message import EmailMessage
from types import ModuleType

import pytest

from devtools.compose_check.debian import (
    Source,
    mirror,
    parse_deb822,
    parse_one_line,
    suite_sources,
)
from devtools.compose_check.project import (
    base_images,
    check_settings,
    env_values,
    referenced_variables,
    render_env,
    required_variables,
)
from devtools.compose_check.standins import IMAGES, split_reference, standin_for

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security/
Suites: bookworm-security
Components: main

Types: deb
URIs: http://example.com/off
Suites: bookworm
Components: main
Enabled: no
"""


def test_deb822_sources_give_every_enabled_deb_suite() -> None:
    assert parse_deb822(DEB822) == [
        Source("http://deb.debian.org/debian", "bookworm", ("main", "contrib")),
        Source("http://deb.debian.org/debian", "bookworm-updates", ("main", "contrib")),
        Source("http://deb.debian.org/debian-security", "bookworm-security", ("main",)),
    ]


def test_one_line_sources_skip_options_comments_and_deb_src() -> None:
    text = (
        "# a comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n"
        "deb-src http://mirror.example/debian bookworm main\n"
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main  # other\n"
    )
    assert parse_one_line(text) == [
        Source("http://mirror.example/debian", "bookworm", ("main",)),
        Source("https://packages.cloud.google.com/apt", "cloud-sdk-bookworm", ("main",)),
    ]


def test_the_stand_ins_use_the_suite_its_companions_and_its_mirror() -> None:
    sources = parse_deb822(DEB822) + parse_one_line(
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main"
    )
    chosen = suite_sources(sources)
    assert [source.line() for source in chosen] == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]
    assert mirror(chosen) == "http://deb.debian.org/debian"
    assert mirror([]) == "http://deb.debian.org/debian"  # Debian's redirector when none


COMPOSE_TEXT = """\
x-app: &app
  environment:
    SECRET_KEY: ${SECRET_KEY:?set SECRET_KEY in .env to the output of python3 -c 'x'}
    URL: postgresql://${USER:-flasky}:${PASSWORD?set it}@db/${DB-flasky}
    HEALTH: "$${PORT:-8000}"
  ports:
    - "${HOST_PORT_WEB:-8000}:8000"
"""


def test_the_compose_file_s_variables_and_the_required_ones() -> None:
    assert referenced_variables(COMPOSE_TEXT) == [
        "SECRET_KEY",
        "USER",
        "PASSWORD",
        "DB",
        "HOST_PORT_WEB",
    ]  # $${PORT...} is the container's own variable, not Compose's
    assert required_variables(COMPOSE_TEXT) == ["SECRET_KEY", "PASSWORD"]


def test_base_images_are_the_from_images_and_the_images_not_built_here() -> None:
    dockerfile = (
        "ARG X=1\nFROM python:3.11-slim AS build\nFROM --platform=linux/amd64 build\nFROM scratch\n"
    )
    compose = {
        "services": {
            "web": {"image": "flasky:latest", "build": "."},
            "redis": {"image": "redis:7"},
            "mailpit": {"image": "axllent/mailpit"},
            "plain": {"build": "."},
        }
    }
    assert base_images(compose, dockerfile) == ["python:3.11-slim", "redis:7", "axllent/mailpit"]


def test_the_check_s_env_file_fills_the_secrets_and_frees_the_ports() -> None:
    example = (
        "# comment: SECRET_KEY=not-this-one\n"
        "SECRET_KEY=\n"
        "FLOWER_BASIC_AUTH=\n"
        'FLASKY_MAIL_SENDER="Flasky Admin <flasky@example.com>"\n'
        "HOST_PORT_WEB=8000\n"
    )
    compose_text = "${SECRET_KEY:?x} ${FLOWER_BASIC_AUTH:?y} ${HOST_PORT_WEB:-8000}"
    ports = iter([41000])
    settings = check_settings(example, compose_text, lambda: next(ports))
    assert settings["HOST_PORT_WEB"] == "41000"
    assert settings["SECRET_KEY"].isalnum() and len(settings["SECRET_KEY"]) == 48
    user, _, password = settings["FLOWER_BASIC_AUTH"].partition(":")
    assert user and password.isalnum()

    rendered = render_env(example, {**settings, "EXTRA": "1"})
    assert rendered.startswith("# comment: SECRET_KEY=not-this-one\n")
    assert env_values(rendered) == {
        **settings,
        "FLASKY_MAIL_SENDER": "Flasky Admin <flasky@example.com>",
        "EXTRA": "1",
    }


@pytest.mark.parametrize(
    ("reference", "expected", "standin"),
    [
        ("python:3.11-slim", ("python", "3.11-slim"), "python"),
        ("redis:7", ("redis", "7"), "redis"),
        ("docker.io/library/postgres:16", ("postgres", "16"), "postgres"),
        ("axllent/mailpit", ("axllent/mailpit", "latest"), "mailpit"),
        ("registry.example:5000/team/app", ("registry.example:5000/team/app", "latest"), None),
    ],
)
def test_image_references_and_their_stand_ins(
    reference: str, expected: tuple[str, str], standin: str | None
) -> None:
    assert split_reference(reference) == expected
    found = standin_for(reference)
    assert (found.name if found else None) == standin


@pytest.fixture(scope="module")
def mailpit() -> ModuleType:
    """images/mailpit/mailpit.py, the stand-in's program (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("mailpit_standin", IMAGES / "mailpit/mailpit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_mailpit_stand_in_shows_messages_with_mailpit_s_fields(mailpit: ModuleType) -> None:
    message = EmailMessage()
    message["From"] = "Flasky Admin <flasky@example.com>"
    message["To"] = "Admin <admin@example.com>"
    message["Subject"] = "[Flasky] New User"
    message["Message-ID"] = "<abc@example.com>"
    message.set_content("Ada   Lovelace\njoined.")
    message.add_alternative("<p>Ada Lovelace joined.</p>", subtype="html")
    received = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    mailbox = mailpit.Mailbox()
    stored = mailbox.add(message.as_bytes(), ["admin@example.com", "audit@example.com"])
    assert stored["From"] == {"Name": "Flasky Admin", "Address": "flasky@example.com"}
    assert stored["To"] == [{"Name": "Admin", "Address": "admin@example.com"}]
    assert stored["Bcc"] == [{"Name": "", "Address": "audit@example.com"}]  # envelope only
    assert stored["MessageID"] == "abc@example.com"
    assert stored["Text"].startswith("Ada   Lovelace") and "<p>" in stored["HTML"]

    page = mailpit.messages_page(mailbox, {})
    assert (page["total"], page["count"], page["start"]) == (1, 1, 0)
    (summary,) = page["messages"]
    assert summary["ID"] == stored["ID"] and summary["Subject"] == "[Flasky] New User"
    assert summary["Snippet"] == "Ada Lovelace joined."
    assert mailbox.find("latest") == mailbox.find(stored["ID"])
    assert mailpit.parse_message(b"Subject: x\r\n\r\nbody\r\n", [], received)["Created"] == (
        "2026-01-02T03:04:05+00:00"
    )
