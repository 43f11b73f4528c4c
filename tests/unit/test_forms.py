"""web/forms.py: the name form cleans what it keeps and refuses what it cannot show safely.

A refused name must leave nothing behind: no user, no email. Accepted names are stored and
delivered by the real-service tests (tests/test_input.py, tests/test_pipeline.py).
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.forms import post_name
from web.extensions import db
from web.forms import NAME_MAX_LENGTH, NameForm
from web.models import Email, User

PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want"


def _stored(app: Flask) -> tuple[int, int]:
    """(users, emails) in the database."""
    with app.app_context():
        count = select(func.count())
        return (
            db.session.scalar(count.select_from(User)) or 0,
            db.session.scalar(count.select_from(Email)) or 0,
        )


def _validated(app: Flask, name: str) -> NameForm:
    with app.test_request_context(method="POST", data={"name": name}):
        app.config["WTF_CSRF_ENABLED"] = False
        form = NameForm()
        form.validate()
        return form


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Ada", "Ada"),
        ("  Walter \t", "Walter"),  # surrounding white space is not part of a name
        ("e\u0301mile", "\u00e9mile"),  # NFC: one name, stored once
        ("张伟", "张伟"),
        (PERSIAN, PERSIAN),  # a zero-width non-joiner is part of its spelling: kept
        ("y" * NAME_MAX_LENGTH, "y" * NAME_MAX_LENGTH),
        ("<script>{{ 7*7 }}", "<script>{{ 7*7 }}"),  # escaped where shown, never refused
    ],
)
def test_a_name_is_trimmed_and_normalised(app: Flask, typed: str, kept: str) -> None:
    form = _validated(app, typed)
    assert form.errors == {}
    assert form.name.data == kept


def test_the_length_is_counted_after_normalising(app: Flask) -> None:
    form = _validated(app, "e\u0301" * NAME_MAX_LENGTH)  # 128 code points, 64 after NFC
    assert form.errors == {} and len(form.name.data) == NAME_MAX_LENGTH


def test_post_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    response = client.post("/", data={"name": "Trudy"})
    assert response.status_code == 400
    assert _stored(app) == (0, 0)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "Please enter a name."),
        ("   ", "Please enter a name."),
        ("x" * 65, "Names are at most 64 characters."),
        ("Eve\r\nBcc: victim@example.com", "control characters"),
        ("Nul\x00byte", "control characters"),
        ("tab\there", "control characters"),
        ("evil\u202egnp.exe", "control characters"),
    ],
)
def test_invalid_names_get_a_form_error(
    app: Flask, client: FlaskClient, name: str, error: str
) -> None:
    response = post_name(client, name)
    assert response.status_code == 200
    assert error in response.get_data(as_text=True)
    assert _stored(app) == (0, 0)


@pytest.mark.parametrize(
    "name",
    [
        "line\u2028separator",
        "\u2066isolate\u2069",
        "delete\x7f",
        "c1\x85control",
        # Invisible format characters: a mark, a zero-width space, a byte order mark.
        "\u200f\u05e9\u05dc\u05d5\u05dd",
        "Ad\u200bmin",
        "\ufeffbom",
    ],
)
def test_every_kind_of_control_character_is_refused(app: Flask, name: str) -> None:
    form = _validated(app, name)
    assert form.errors == {"name": ["Names can't contain control characters or line breaks."]}
