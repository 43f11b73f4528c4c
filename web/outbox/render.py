"""An email's two bodies, rendered from `templates/<template>.txt` and `.html`.

Mail clients ignore or strip <style> blocks (Gmail in many cases, Outlook's web and desktop
apps in part), so the HTML templates keep their CSS in one <style> block for people to read
and edit, and `render_bodies` moves every rule into style attributes before the email is
stored. Remote stylesheets are never fetched: this runs inside web requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import css_inline
from flask import current_app

_inliner = css_inline.CSSInliner(load_remote_stylesheets=False)


def render_bodies(template: str, **context: object) -> tuple[str, str]:
    """Return the text body and the HTML body (CSS inlined) of `template` with `context`."""
    [bodies] = render_many(template, [context])
    return bodies


def render_many(template: str, contexts: Sequence[Mapping[str, object]]) -> list[tuple[str, str]]:
    """`render_bodies(template, **context)` for each of `contexts`, in their order.

    For a bulk: the two templates are looked up, and the app's context processors run, once
    for all (the context wins over what the processors give, as in `flask.render_template`),
    and the HTML bodies are inlined together, on every core (css_inline's `inline_many`:
    about half the time of one by one on two cores; inlining is the largest part of
    rendering).
    """
    environment = current_app.jinja_env
    text_template = environment.get_template(f"{template}.txt")
    html_template = environment.get_template(f"{template}.html")
    shared: dict[str, object] = {}
    current_app.update_template_context(shared)
    variables = [{**shared, **context} for context in contexts]
    texts = [text_template.render(each) for each in variables]
    htmls = _inliner.inline_many([html_template.render(each) for each in variables])
    return list(zip(texts, htmls, strict=True))
