"""/dev/inbox: the caught mail, in the development configuration only (404 anywhere else).

`/dev/inbox/` lists the messages, newest first, a page at a time; `/dev/inbox/<name>` shows
one; its HTML body is served alone, at `<name>/body.html`, into an `<iframe sandbox>` of that
page, under a policy of its own that lets the email's styles apply and loads nothing remote;
`<name>/raw` is the message as received, `<name>/attachments/<index>` an attachment to save.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    render_template,
    request,
    send_file,
)

from web.caught_mail import folder, parsing

PER_PAGE = 50

# The HTML body, alone in its sandboxed frame: its own styles (<style> and style="") and
# images written into it (data:), nothing else; no script, form or plugin, nothing fetched
# from anywhere (a remote image would tell its sender that the email was opened). `sandbox`
# applies the frame's restrictions even when the URL is opened directly.
BODY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
)
# A download: nothing in it may run, even if a browser ignores the attachment disposition.
DOWNLOAD_POLICY = "default-src 'none'; sandbox"

inbox = Blueprint("inbox", __name__, url_prefix="/dev/inbox")


def _folder() -> Path:
    return Path(current_app.config["DEV_SMTP_MAILDIR"])


def _file(name: str) -> folder.CaughtFile:
    found = folder.find(_folder(), name)
    if found is None:
        abort(404)
    return found


def _read(caught: folder.CaughtFile) -> parsing.CaughtMessage:
    try:
        raw = caught.path.read_bytes()
    except OSError:  # removed since it was listed
        abort(404)
    return parsing.read_message(raw)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(parsing.HEAD_BYTES)
    except OSError:
        return b""


@inbox.route("/")
def index() -> str:
    files = folder.caught_files(_folder())
    pages = max(1, math.ceil(len(files) / PER_PAGE))
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    shown = files[(page - 1) * PER_PAGE : page * PER_PAGE]
    return render_template(
        "dev/inbox.html",
        folder=_folder(),
        rows=[(f, parsing.read_summary(_head(f.path))) for f in shown],
        total=len(files),
        page=page,
        pages=pages,
    )


@inbox.route("/<name>")
def message(name: str) -> str:
    caught = _file(name)
    return render_template("dev/inbox_message.html", file=caught, message=_read(caught))


@inbox.route("/<name>/body.html")
def html_body(name: str) -> Response:
    html = _read(_file(name)).html
    if html is None:
        abort(404)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = BODY_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"  # for browsers without frame-ancestors
    return response


@inbox.route("/<name>/raw")
def raw(name: str) -> Response:
    try:
        data = _file(name).path.read_bytes()
    except OSError:
        abort(404)
    response = Response(data, mimetype="text/plain")  # charset: utf-8, and nosniff from
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY  # web/security.py
    return response


@inbox.route("/<name>/attachments/<int:index>")
def attachment(name: str, index: int) -> Response:
    attachments = _read(_file(name)).attachments
    if index >= len(attachments):
        abort(404)
    part = attachments[index]
    response = send_file(
        io.BytesIO(part.data),
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=part.filename,
        max_age=0,
    )
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    return response


def register(app: Flask) -> None:
    if app.config["CONFIG_NAME"] == "development":
        app.register_blueprint(inbox)
