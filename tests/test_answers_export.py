"""export_markdown / render_plain_markdown: the answer as a markdown download."""

from __future__ import annotations

import pytest

from sonarweb.answers import export_markdown, render_plain_markdown
from sonarweb.perplexity.payload import Completion
from tests.test_answers_render import SOURCES, raw


def test_export_has_answer_and_numbered_sources() -> None:
    completion = raw(
        "<think>private plan</think>\n# Findings\n\nBatteries [1][3].",
        reasoning_steps=[{"thought": "secret step", "type": "web_search"}],
        **SOURCES,
    )
    name, text = export_markdown(completion, question="Do batteries pay off?", request_id="abc")
    assert name == "do-batteries-pay-off.md"
    assert text == (
        "# Do batteries pay off?\n\n"
        "# Findings\n\nBatteries [^1][^3].\n\n"
        "## Sources\n\n"
        "[^1]: [Alpha study](https://www.alpha.com/a)\n"
        "[^3]: [Gamma report](https://gamma.net/c)\n\n"
        "Not cited in the text:\n\n"
        "- [Beta post](https://beta.org/b/)\n"
    )
    assert "private plan" not in text and "secret step" not in text


def test_plain_markdown_has_no_title_and_cites_with_footnotes() -> None:
    text = render_plain_markdown(
        raw("Claim [2]. Also [1, 3] and [9] and [x](https://a.example/).", **SOURCES)
    )
    assert text.startswith(
        "Claim [^2]. Also [^1][^3] and [9] and [x](https://a.example/).\n\n## Sources\n\n"
        "[^1]: [Alpha study]"
    )


def test_raw_html_in_the_answer_is_escaped_outside_code() -> None:
    answer = (
        '<img src=x onerror="alert(1)"> and <iframe src="https://evil.example/"></iframe>\n\n'
        "<style>body{background:url(https://track.example/p.png)}</style>\n\n"
        "Code stays: `a <b> c` and\n\n```html\n<div>kept as code</div>\n```\n"
    )
    text = render_plain_markdown(raw(answer))
    assert "<img" not in text and "<iframe" not in text and "<style" not in text
    assert "&lt;img" in text and "&lt;iframe" in text and "&lt;style" in text
    assert "`a <b> c`" in text and "<div>kept as code</div>" in text
    # Rendered by a Markdown viewer that allows HTML, none of it is an element.
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark", {"html": True}).render(text)
    assert "<img" not in html and "<iframe" not in html and "<style" not in html


@pytest.mark.parametrize(
    ("question", "request_id", "filename"),
    [
        ("What's new in Ünïcode 16?", "", "what-s-new-in-unicode-16.md"),
        ("", "9f1c-22AB", "9f1c-22ab.md"),
        ("电池储能", "req-7", "req-7.md"),
        ("", "", "answer.md"),
        ("../../etc/passwd", "", "etc-passwd.md"),
        ("word " * 40, "", ("word-" * 12)[:-1] + ".md"),
    ],
)
def test_filename(question: str, request_id: str, filename: str) -> None:
    name, _ = export_markdown(raw("x"), question=question, request_id=request_id)
    assert name == filename
    assert name.endswith(".md") and "/" not in name and len(name) <= 63


def test_awkward_titles_and_urls_stay_valid_markdown() -> None:
    completion = raw(
        "x",
        citations=[
            "https://en.example.org/wiki/Battery_(electricity)",
            "javascript:alert(1)",
            "https://a.example.com/a b",
        ],
        search_results=[
            {
                "url": "https://en.example.org/wiki/Battery_(electricity)",
                "title": "Battery [wiki]\nmore",
            },
            {"url": "https://a.example.com/a b", "title": "Spaces"},
        ],
    )  # fmt: skip
    lines = render_plain_markdown(completion).splitlines()
    assert (
        lines[-3]
        == r"- [Battery \[wiki\] more](https://en.example.org/wiki/Battery_%28electricity%29)"
    )
    assert lines[-2] == "- javascript:alert(1)"
    assert lines[-1] == "- [Spaces](https://a.example.com/a%20b)"


def test_json_answer_exports_as_fenced_block() -> None:
    text = render_plain_markdown(raw('{"a": [1, 2]}'))
    assert text == '```json\n{\n  "a": [\n    1,\n    2\n  ]\n}\n```\n'


def test_attachments_are_listed() -> None:
    content = [
        {"type": "text", "text": "See the file."},
        {"type": "pdf_url", "pdf_url": {"url": "https://docs.example.com/r.pdf"}},
    ]
    text = render_plain_markdown(raw(content))
    assert (
        "## Attachments\n\n- PDF: [https://docs.example.com/r.pdf](https://docs.example.com/r.pdf)"
        in text
    )


def test_empty_answer() -> None:
    assert render_plain_markdown(Completion()) == "The answer is empty.\n"
    name, text = export_markdown(Completion(), question="Q")
    assert (name, text) == ("q.md", "# Q\n\nThe answer is empty.\n")
