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


class UnstorableContext(ValueError):
    """A context renders into a body the outbox cannot store; `position` is its index in
    `render_many`'s contexts (0 for `render_bodies`)."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"context {position}: {reason}")
        self.position = position
        self.reason = reason


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
    rendering). Raises `UnstorableContext` for the first context whose bodies the outbox
    cannot store.
    """
    environment = current_app.jinja_env
    text_template = environment.get_template(f"{template}.txt")
    html_template = environment.get_template(f"{template}.html")
    shared: dict[str, object] = {}
    current_app.update_template_context(shared)
    variables = [{**shared, **context} for context in contexts]
    texts = [text_template.render(each) for each in variables]
    htmls = [html_template.render(each) for each in variables]
    for position, bodies in enumerate(zip(texts, htmls, strict=True)):
        for body in bodies:
            _check_storable(position, body)
    return list(zip(texts, _inliner.inline_many(htmls), strict=True))


def _check_storable(position: int, body: str) -> None:
    """Refuse what only a context value can bring into a body, before the inliner (which
    fails on a lone surrogate with a UnicodeEncodeError) and the database see it."""
    if "\x00" in body:
        # PostgreSQL cannot store it (SQLite can: refuse it on both, with a clear reason).
        raise UnstorableContext(position, "the rendered body contains a NUL character")
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate, e.g. from bytes decoded with errors="surrogateescape".
        raise UnstorableContext(
            position,
            f"the rendered body contains a lone surrogate (U+{ord(body[exc.start]):04X}), "
            "which is not text: UTF-8 cannot encode it",
        ) from None
