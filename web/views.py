"""The name form (the book's chapter 6 app): Post/Redirect/Get, new users announced by email."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, session, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from web.extensions import db
from web.forms import NameForm
from web.limiter import limiter
from web.models import User
from web.outbox.api import send_email

main = Blueprint("main", __name__)


def _form_limit() -> str:
    return current_app.config["FLASKY_FORM_RATE_LIMIT"]


@main.route("/", methods=["GET", "POST"])
@limiter.limit(
    _form_limit,
    methods=["POST"],
    exempt_when=lambda: current_app.config["FLASKY_FORM_RATE_LIMIT"] is None,
)
def index() -> object:
    form = NameForm()
    if form.validate_on_submit():
        name = form.name.data
        session["known"] = not _add_user_if_new(name)
        session["name"] = name
        if not session["known"]:
            flash(_thanks(name), "success")
        return redirect(url_for(".index"))
    return _page(form)


def _page(form: NameForm) -> str:
    return render_template(
        "index.html", form=form, name=session.get("name"), known=session.get("known", False)
    )


def _thanks(name: str) -> str:
    if current_app.config["FLASKY_ADMIN"]:
        return f"Thanks, {name}! The admin has been told."
    return f"Thanks, {name}!"


def _add_user_if_new(name: str) -> bool:
    """Store `name` as a new user and tell the admin, in one transaction.

    Returns False when the name was already known, including when another request stored
    the same name a moment before us (the unique constraint decides the race).

    A pooled database connection that died unnoticed (a database restart or failover) fails
    the first statement; the transaction is then tried once more on a new connection instead
    of answering 500. That is safe: if the lost connection had committed, the name is known.
    """
    try:
        return _store_if_new(name)
    except DBAPIError as exc:
        db.session.rollback()
        if not exc.connection_invalidated:
            raise
    return _store_if_new(name)


def _store_if_new(name: str) -> bool:
    if db.session.scalar(select(User.id).where(User.username == name)) is not None:
        return False
    admin = current_app.config["FLASKY_ADMIN"]
    try:
        user = User(username=name)
        db.session.add(user)
        db.session.flush()
        if admin:
            # Keyed by the new user: however the request is retried, one email to the admin.
            send_email(
                admin, "New User", "mail/new_user", name=name, idempotency_key=f"new-user:{user.id}"
            )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


@main.app_errorhandler(429)
def too_many_requests(error: object) -> tuple[str, int]:
    """Over the form's limit: say so; the view did not run, so nothing was stored or queued."""
    return render_template("rate_limited.html"), 429


@main.errorhandler(CSRFError)
def form_expired(error: CSRFError) -> tuple[str, int]:
    """The form was sent with an expired or missing CSRF token (a page left open for over an
    hour): nothing was stored. The form comes back with the name as typed and a fresh token."""
    flash("The form had expired, so nothing was saved: send it again.", "error")
    return _page(NameForm()), 400
