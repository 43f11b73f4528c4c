"""The book's chapter 6 `hello.py` (examples 6-1 to 6-5) as an app factory, for the baselines.

The name form, a `User` table, Flask-Mail, and `send_email(to, subject, template, **kwargs)`
exactly as the book writes it, rendering the same templates as flasky; only the last step,
handing the `Message` to Flask-Mail, is passed in (`deliver`): example 6-4 calls `mail.send`
in the request, example 6-5 in a new thread. Configured from the same environment variables
as flasky (DATABASE_URL, MAIL_SERVER, MAIL_PORT, FLASKY_ADMIN, SECRET_KEY), so both run
against the same PostgreSQL database and SMTP server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Flask, current_app, redirect, render_template, session, url_for
from flask_mail import Mail, Message
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired

ROOT = Path(__file__).resolve().parent.parent

db = SQLAlchemy()
mail = Mail()
main = Blueprint("main", __name__)  # flasky's templates link to "main.index"


class User(db.Model):
    __tablename__ = "users"  # flasky's table, created by its migrations
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(unique=True)


class NameForm(FlaskForm):
    name = StringField("What is your name?", validators=[DataRequired()])
    submit = SubmitField("Submit")


Deliver = Callable[[Flask, Message], object]


def send_email(to: str, subject: str, template: str, **kwargs: object) -> object:
    """Example 6-3: build the message from the two templates, then deliver it."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    msg = Message(
        app.config["FLASKY_MAIL_SUBJECT_PREFIX"] + " " + subject,
        sender=app.config["FLASKY_MAIL_SENDER"],
        recipients=[to],
    )
    msg.body = render_template(template + ".txt", **kwargs)
    msg.html = render_template(template + ".html", **kwargs)
    return app.extensions["book_deliver"](app, msg)


@main.route("/", methods=["GET", "POST"])
def index() -> object:
    """Example 6-4's view (with the commit that the book left to SQLALCHEMY_COMMIT_ON_TEARDOWN)."""
    form = NameForm()
    if form.validate_on_submit():
        user = db.session.scalar(db.select(User).filter_by(username=form.name.data))
        if user is None:
            user = User(username=form.name.data)
            db.session.add(user)
            session["known"] = False
            if current_app.config["FLASKY_ADMIN"]:
                send_email(
                    current_app.config["FLASKY_ADMIN"],
                    "New User",
                    "mail/new_user",
                    name=user.username,
                )
            db.session.commit()
        else:
            session["known"] = True
        session["name"] = form.name.data
        return redirect(url_for(".index"))
    return render_template(
        "index.html", form=form, name=session.get("name"), known=session.get("known", False)
    )


def create_book_app(deliver: Deliver) -> Flask:
    env = os.environ
    app = Flask(
        "hello", template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static")
    )
    app.config.update(
        SECRET_KEY=env["SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=env["DATABASE_URL"],
        MAIL_SERVER=env.get("MAIL_SERVER", "localhost"),
        MAIL_PORT=int(env.get("MAIL_PORT", "25")),
        FLASKY_MAIL_SUBJECT_PREFIX="[Flasky]",
        FLASKY_MAIL_SENDER="Flasky Admin <flasky@example.com>",
        FLASKY_ADMIN=env.get("FLASKY_ADMIN"),
    )
    db.init_app(app)
    mail.init_app(app)
    app.extensions["book_deliver"] = deliver
    app.register_blueprint(main)
    return app
