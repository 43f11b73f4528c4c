"""The outbox dashboard at /admin: counts, recent emails, one email in full, retry a failed one.

Every page but the login needs the admin's session (web/admin/auth.py). Every POST carries a
CSRF token (CSRFProtect, for the whole app). What the pages show and change comes from
web/outbox/queries.py, which the `flask outbox` commands use too.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from web.admin import auth
from web.admin.forms import LoginForm
from web.extensions import db
from web.limiter import limiter
from web.models import utcnow
from web.outbox import queries
from web.security import shows_email_html

log = logging.getLogger(__name__)

admin = Blueprint("admin", __name__, url_prefix="/admin")

PER_PAGE = 50


@admin.before_request
def _require_login() -> Response | None:
    """Send anonymous visitors to the login page, remembering where they were going (GET)."""
    if request.endpoint == "admin.login" or auth.is_logged_in():
        return None
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("admin.login", next=target))


def _login_limit() -> str:
    return current_app.config["ADMIN_LOGIN_RATE_LIMIT"]


@admin.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Response | str:
    form = LoginForm()
    not_configured = auth.not_configured_reason()
    if not_configured is not None:
        # One message, how to set the admin up; no form, so no "wrong password" either.
        if not_configured == "development-login":
            log.error("refusing dev.py's development admin login outside development")
        return render_template("admin/login.html", form=form, not_configured=not_configured)
    error = None
    if form.validate_on_submit():
        if auth.check_credentials(form.username.data, form.password.data):
            auth.log_in()
            log.info("admin logged in from %s", request.remote_addr)
            target = auth.safe_next(request.args.get("next"))
            return redirect(target or url_for(".dashboard"))
        log.warning("refused admin login from %s", request.remote_addr)
        error = "Wrong username or password."
    elif form.is_submitted():
        error = "Enter the username and the password."
    return render_template("admin/login.html", form=form, not_configured=None, error=error)


@admin.route("/logout", methods=["POST"])
def logout() -> Response:
    auth.log_out()
    flash("You are logged out.", "info")
    return redirect(url_for(".login"))


@admin.route("/")
def dashboard() -> str:
    """Counts, and one page of emails: every email, one status, or the scheduled ones."""
    now = utcnow()  # one "now" for the counts, the filter and the labels of the page
    status = request.args.get("status") or None
    notice = None
    if status is not None and not queries.is_filter(status):
        notice = f"There is no status {status!r}: showing every email."
        status = None
    page_number = request.args.get("page", 1, type=int)
    page = queries.email_page(page_number, PER_PAGE, status, now=now)
    stats = queries.stats(now)
    return render_template(
        "admin/dashboard.html",
        stats=stats,
        oldest_age=queries.describe_age(stats.oldest_undelivered),
        status=status,
        page=page,
        scheduled_ids={e.id for e in page.items if queries.is_scheduled(e, now)},
        notice=notice,
    )


@admin.route("/emails/<int:email_id>")
@shows_email_html
def email(email_id: int) -> str:
    row = queries.get_email(email_id)
    if row is None:
        abort(404)
    return render_template(
        "admin/email.html",
        email=row,
        scheduled=queries.is_scheduled(row, utcnow()),
        attachments=queries.attachments_of(email_id),
    )


@admin.route("/emails/<int:email_id>/retry", methods=["POST"])
def retry(email_id: int) -> Response:
    if queries.requeue(email_id):
        db.session.commit()  # publishes the email
        log.info("admin requeued email %s", email_id)
        flash(f"Email {email_id} is queued again.", "success")
    else:
        db.session.rollback()
        status = queries.email_status(email_id)
        if status is None:
            abort(404)
        flash(f"Email {email_id} is {status}, not failed: nothing to retry.", "info")
    target = auth.safe_next(request.form.get("next"))
    return redirect(target or url_for(".email", email_id=email_id))


@admin.errorhandler(429)
def too_many_requests(error: TooManyRequests) -> tuple[str, int]:
    return render_template("admin/rate_limited.html", limit=error.description), 429
