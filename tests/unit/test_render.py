"""web/outbox/render.py: the HTML body with its CSS inlined, the text one saying the same."""

from __future__ import annotations

import pytest
from flask import Flask

from web.outbox.render import UnstorableContext, render_bodies, render_many


def test_the_html_body_has_its_css_inlined(app: Flask) -> None:
    with app.app_context():
        _text, html = render_bodies("mail/new_user", name="Ada")
    assert "<style" not in html
    assert '<div class="header" style="' in html
    assert "max-width: 560px" in html


def test_both_bodies_carry_the_content_and_only_the_html_one_escapes(app: Flask) -> None:
    name = "<i>Ada</i> & {{ 7*7 }}"
    with app.app_context():
        text, html = render_bodies("mail/new_user", name=name)
    assert f"A new user signed up on Flasky: {name}" in text
    assert "&lt;i&gt;Ada&lt;/i&gt; &amp; {{ 7*7 }}" in html
    assert "49" not in text + html
    for sentence in ("A new user signed up on Flasky", "because you are Flasky's admin"):
        assert sentence in text and sentence in html


def test_no_remote_stylesheet_is_fetched(app: Flask, tmp_path) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "remote.txt").write_text("hi")
    (tmp_path / "mail" / "remote.html").write_text(
        '<html><head><link rel="stylesheet" href="http://192.0.2.1/x.css">'
        "<style>p { color: red }</style></head><body><p>hi</p></body></html>"
    )
    app.jinja_loader.searchpath.insert(0, str(tmp_path))
    with app.app_context():
        _text, html = render_bodies("mail/remote")
    assert '<p style="color: red;">hi</p>' in html


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("\ud800", "a lone surrogate (U+D800), which is not text: UTF-8 cannot encode it"),
        # Bytes decoded with errors="surrogateescape".
        ("bytes\udcff", "a lone surrogate (U+DCFF), which is not text: UTF-8 cannot encode it"),
        ("nul\x00byte", "a NUL character"),
    ],
)
def test_a_context_that_renders_into_unstorable_text_is_named_by_its_position(
    app: Flask, value: str, reason: str
) -> None:
    with app.app_context(), pytest.raises(UnstorableContext) as raised:
        render_many("mail/new_user", [{"name": "Ada"}, {"name": value}])
    assert raised.value.position == 1
    assert raised.value.reason == f"the rendered body contains {reason}"
