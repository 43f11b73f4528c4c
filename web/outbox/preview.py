"""Development only: every email template rendered with sample data, exactly as it is sent.

`/dev/mail/` lists the templates (the names under templates/mail/ with both a .txt and an
.html file), `/dev/mail/<name>` shows the HTML body with its CSS inlined, and
`/dev/mail/<name>.txt` the text body. `register` adds the routes only in the development
configuration; anywhere else they do not exist (404).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, current_app, render_template

from web.outbox.render import render_bodies
from web.security import shows_email_html

# Sample context for each template; a template missing here is rendered without context.
SAMPLES: dict[str, dict[str, object]] = {
    "new_user": {"name": "Ada Lovelace"},
    "test_email": {},
}

mail_preview = Blueprint("mail_preview", __name__, url_prefix="/dev/mail")


def mail_templates() -> list[str]:
    """The email names: templates/mail/<name>.txt and .html both exist (so not base.html)."""
    found: dict[str, set[str]] = {}
    for path in current_app.jinja_env.list_templates():
        directory, _, filename = path.rpartition("/")
        name, _, extension = filename.rpartition(".")
        if directory == "mail" and extension in ("txt", "html"):
            found.setdefault(name, set()).add(extension)
    return sorted(name for name, extensions in found.items() if len(extensions) == 2)


def _render(name: str) -> tuple[str, str]:
    if name not in mail_templates():
        abort(404)
    return render_bodies(f"mail/{name}", **SAMPLES.get(name, {}))


@mail_preview.route("/")
def index() -> str:
    return render_template("dev/mail_preview.html", names=mail_templates())


@mail_preview.route("/<name>")
@shows_email_html
def html(name: str) -> str:
    return _render(name)[1]


@mail_preview.route("/<name>.txt")
def text(name: str) -> Response:
    return Response(_render(name)[0], mimetype="text/plain")


def register(app: Flask) -> None:
    if app.config["CONFIG_NAME"] == "development":
        app.register_blueprint(mail_preview)
