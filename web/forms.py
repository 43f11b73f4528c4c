"""Forms: the book's name form, with the input rules it left out."""

from __future__ import annotations

import unicodedata

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from web.outbox.addresses import has_control_characters

NAME_MAX_LENGTH = 64


def _clean_name(value: str | None) -> str | None:
    """Trim surrounding white space and normalise to NFC, so that one name is stored once."""
    if value is None:
        return None
    return unicodedata.normalize("NFC", value.strip())


def _no_control_characters(form: FlaskForm, field: StringField) -> None:
    """The outbox's character rule (web/outbox/addresses.py), which the mail API applies to
    every header value and filename: what the form refuses, the API refuses."""
    if has_control_characters(field.data):
        raise ValidationError("Names can't contain control characters or line breaks.")


class NameForm(FlaskForm):
    name = StringField(
        "What is your name?",
        filters=[_clean_name],
        validators=[
            DataRequired(message="Please enter a name."),
            Length(max=NAME_MAX_LENGTH, message=f"Names are at most {NAME_MAX_LENGTH} characters."),
            _no_control_characters,
        ],
    )
    submit = SubmitField("Submit")
