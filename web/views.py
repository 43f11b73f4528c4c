"""The name form (the book's chapter 6 app): Post/Redirect/Get, new users announced by email."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, session, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from web.extensions import db
from web.forms import NameForm
from web.models import User
from web.outbox import send_email

main = Blueprint("main", __name__)


@main.route("/", methods=["GET", "POST"])
def index() -> object:
    form = NameForm()
    if form.validate_on_submit():
        name = form.name.data
        session["known"] = not _add_user_if_new(name)
        session["name"] = name
        return redirect(url_for(".index"))
    return render_template(
        "index.html", form=form, name=session.get("name"), known=session.get("known", False)
    )


def _add_user_if_new(name: str) -> bool:
    """Store `name` as a new user and tell the admin, in one transaction.

    Returns False when the name was already known, including when another request stored
    the same name a moment before us (the unique constraint decides the race).
    """
    if db.session.scalar(select(User.id).where(User.username == name)) is not None:
        return False
    admin = current_app.config["FLASKY_ADMIN"]
    try:
        db.session.add(User(username=name))
        db.session.flush()
        if admin:
            send_email(admin, "New User", "mail/new_user", name=name)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True
