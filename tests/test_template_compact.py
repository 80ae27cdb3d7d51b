"""{% compact %}: a long line of markup laid out on several, with nothing added to the page."""

from __future__ import annotations

from django.template import engines


def render(source: str, **context: object) -> str:
    return engines["django"].from_string("{% load ui %}" + source).render(context)


def test_line_breaks_go_and_spaces_within_a_line_stay():
    source = """<p>{% compact %}
      Tracking {{ n }} new request{{ n|pluralize }}
      {% if already %}; {{ already }} already tracked{% endif %}.
    {% endcompact %}</p>"""
    assert render(source, n=2, already=1) == "<p>Tracking 2 new requests; 1 already tracked.</p>"
    assert render(source, n=1, already=0) == "<p>Tracking 1 new request.</p>"


def test_values_keep_their_own_line_breaks():
    source = "{% compact %}\n  <pre>{{ code }}</pre>\n{% endcompact %}"
    assert render(source, code="a\n  b") == "<pre>a\n  b</pre>"


def test_only_the_text_inside_changes():
    source = "<ul>\n  {% compact %}\n    <li>a</li>\n    <li>b</li>\n  {% endcompact %}\n</ul>"
    assert render(source) == "<ul>\n  <li>a</li><li>b</li>\n</ul>"
