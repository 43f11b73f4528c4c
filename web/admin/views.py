"""The outbox dashboard at /admin: counts, the emails a filter finds, one email in full, and
the operator's actions: retry a failed email or every failed one a filter finds, cancel a
scheduled one.

Every page but the login needs the admin's session (web/admin/auth.py). Every POST carries a
CSRF token (CSRFProtect, for the whole app). What the pages show and change comes from
web/outbox/queries.py, search.py and actions.py, which the `flask outbox` commands use too;
every action is recorded there, as "admin:<ADMIN_USERNAME>".
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from web.admin import auth, chart
from web.admin.forms import LoginForm
from web.extensions import db
from web.limiter import fail_closed, limiter
from web.models import utcnow
from web.outbox import actions, attempt_log, queries, search
from web.security import shows_email_html

log = logging.getLogger(__name__)

admin = Blueprint("admin", __name__, url_prefix="/admin")

PER_PAGE = 50
RECENT_ACTIONS = 5


@admin.record_once
def _session_cookie(state: BlueprintSetupState) -> None:
    """The app's session cookie expires with the admin session it carries (auth.SessionCookie)."""
    state.app.session_interface = auth.SessionCookie()


@admin.before_request
def _require_login() -> Response | None:
    """Send anonymous visitors to the login page, remembering where they were going (GET)."""
    if request.endpoint == "admin.login":
        return None
    state = auth.session_state()
    if state == "live":
        return None
    if state == "ended":
        flash("Your session has ended: log in again.", "info")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("admin.login", next=target))


@admin.url_value_preprocessor
def _known_email_id(endpoint: str | None, values: dict[str, object] | None) -> None:
    """An id too large for the column names no email: 404, before any query sees it."""
    email_id = (values or {}).get("email_id")
    if isinstance(email_id, int) and email_id > search.MAX_ID:
        abort(404)


def _login_limit() -> str:
    return current_app.config["ADMIN_LOGIN_RATE_LIMIT"]


@admin.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@fail_closed  # no guess is checked while the attempts cannot be counted in Redis
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
    """Counts, and one page of the emails the filter (status, priority, search) finds."""
    now = utcnow()  # one "now" for the counts, the filter and the labels of the page
    parsed = search.filter_from_args(request.args)
    email_filter = parsed.filter
    page_number = request.args.get("page", 1, type=int)
    page = queries.email_page(page_number, PER_PAGE, email_filter, now=now)
    stats = queries.stats(now)
    return render_template(
        "admin/dashboard.html",
        stats=stats,
        oldest_age=queries.describe_age(stats.oldest_undelivered),
        email_filter=email_filter,
        status=email_filter.status,
        statuses=search.FILTERS,
        priorities=search.PRIORITIES,
        page=page,
        scheduled_ids={e.id for e in page.items if queries.is_scheduled(e, now)},
        notices=parsed.problems,
        retryable=_retryable(email_filter, page, now),
        recent_actions=actions.recent_actions(RECENT_ACTIONS),
        describe_target=actions.describe_target,
        figures=chart.delivery_figures(now),
    )


def _retryable(email_filter: search.EmailFilter, page: queries.EmailPage, now: datetime) -> int:
    """How many failed emails the filter finds: what "Retry N failed emails" would retry."""
    if email_filter.status == "failed":
        return page.total
    if email_filter.status is not None:
        return 0
    return queries.count_emails(actions.failed_only(email_filter), now=now)


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
        attempt_log=attempt_log.attempts_of(email_id),
    )


@admin.route("/emails/<int:email_id>/retry", methods=["POST"])
def retry(email_id: int) -> Response:
    if actions.requeue(email_id, actor=actions.admin_actor()):
        db.session.commit()  # publishes the email
        flash(f"Email {email_id} is queued again.", "success")
    else:
        db.session.rollback()
        status = queries.email_status(email_id)
        if status is None:
            abort(404)
        flash(f"Email {email_id} is {status}, not failed: nothing to retry.", "info")
    target = auth.safe_next(request.form.get("next"))
    return redirect(target or url_for(".email", email_id=email_id))


@admin.route("/activity")
@auth.background
def activity() -> tuple[str, int, dict[str, str]]:
    """The dashboard's counts and charts alone, which static/dashboard-refresh.js polls."""
    now = utcnow()
    stats = queries.stats(now)
    page = render_template(
        "admin/activity.html",
        stats=stats,
        oldest_age=queries.describe_age(stats.oldest_undelivered),
        figures=chart.delivery_figures(now),
    )
    return page, 200, {"Cache-Control": "no-store"}


@admin.route("/emails/<int:email_id>/cancel", methods=["POST"])
def cancel(email_id: int) -> Response:
    """Cancel a scheduled email (queued, not yet due): it is never sent."""
    if actions.cancel(email_id, actor=actions.admin_actor()):
        db.session.commit()
        flash(f"Email {email_id} is cancelled: it will not be sent.", "success")
    else:
        db.session.rollback()
        refusal = actions.cancel_refusal(email_id)
        if refusal is None:
            abort(404)
        flash(refusal, "info")
    target = auth.safe_next(request.form.get("next"))
    return redirect(target or url_for(".email", email_id=email_id))


@admin.route("/retry-failed", methods=["GET", "POST"])
def retry_failed() -> Response | str:
    """Retry every failed email the dashboard's filter finds: GET shows how many and asks;
    the POST (CSRF) retries those still failed that were failed when counted."""
    form = request.form if request.method == "POST" else request.args
    parsed = search.filter_from_args(form)
    email_filter = parsed.filter
    back = url_for(".dashboard", **email_filter.args())
    if parsed.problems:
        for problem in parsed.problems:
            flash(problem, "error")
        return redirect(back)
    try:
        failed = actions.failed_only(email_filter)
    except ValueError:
        flash(f"Only failed emails can be retried, not {email_filter.status} ones.", "info")
        return redirect(back)
    if request.method == "GET":
        counted_at = utcnow()
        return render_template(
            "admin/retry_failed.html",
            email_filter=email_filter,
            failed=failed,
            count=queries.count_emails(failed, now=counted_at),
            counted_at=counted_at.isoformat(),
            back=back,
        )
    try:
        counted_at = datetime.fromisoformat(request.form.get("counted_at", ""))
        confirmed = int(request.form.get("count", ""))
        if counted_at.tzinfo is not None:  # the page sends naive UTC, as the rows hold it
            raise ValueError(counted_at)
    except ValueError:
        flash("The confirmation was incomplete: nothing was retried. Try again.", "error")
        return redirect(back)
    retried = actions.requeue_failed(
        email_filter, failed_before=counted_at, actor=actions.admin_actor()
    )
    db.session.commit()  # asks for a sweep, which publishes them
    if retried == confirmed:
        flash(f"{_emails(retried)} queued again.", "success")
    else:
        flash(
            f"{_emails(retried)} of the {confirmed} you confirmed queued again: the others "
            "were retried, or failed anew, since the count.",
            "info",
        )
    return redirect(back)


def _emails(count: int) -> str:
    return f"{count} email{'' if count == 1 else 's'}"


@admin.errorhandler(429)
def too_many_requests(error: TooManyRequests) -> tuple[str, int]:
    return render_template("admin/rate_limited.html", limit=error.description), 429


@admin.errorhandler(CSRFError)
def form_expired(error: CSRFError) -> tuple[str, int]:
    """A form sent with an expired or missing CSRF token (a page left open for over an hour):
    nothing was done. The login comes back with the username as typed, never the password;
    any other form gets a page that says so, with the way back to where it was sent from."""
    message = "The form had expired, so nothing was done: send it again."
    if request.endpoint == "admin.login":
        page = render_template(
            "admin/login.html",
            form=LoginForm(),  # the username from the post; a password field is never refilled
            not_configured=auth.not_configured_reason(),
            error=message,
        )
    else:
        back = auth.safe_next(request.form.get("next")) or url_for(".dashboard")
        page = render_template("admin/form_expired.html", message=message, back=back)
    return page, 400
