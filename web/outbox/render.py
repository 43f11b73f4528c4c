"""An email's two bodies, rendered from `templates/<template>.txt` and `.html`.

Mail clients ignore or strip <style> blocks (Gmail in many cases, Outlook's web and desktop
apps in part), so the HTML templates keep their CSS in one <style> block for people to read
and edit, and `render_bodies` moves every rule into style attributes before the email is
stored. Remote stylesheets are never fetched: this runs inside web requests.
"""

from __future__ import annotations

import css_inline
from flask import render_template

_inliner = css_inline.CSSInliner(load_remote_stylesheets=False)


def render_bodies(template: str, **context: object) -> tuple[str, str]:
    """Return the text body and the HTML body (CSS inlined) of `template` with `context`."""
    text = render_template(f"{template}.txt", **context)
    html = _inliner.inline(render_template(f"{template}.html", **context))
    return text, html
