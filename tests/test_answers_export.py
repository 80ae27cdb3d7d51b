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
        "# Findings\n\nBatteries [1][3].\n\n"
        "## Sources\n\n"
        "1. [Alpha study](https://www.alpha.com/a)\n"
        "2. [Beta post](https://beta.org/b/)\n"
        "3. [Gamma report](https://gamma.net/c)\n"
    )
    assert "private plan" not in text and "secret step" not in text


def test_plain_markdown_has_no_title_and_keeps_markers() -> None:
    text = render_plain_markdown(raw("Claim [2].", **SOURCES))
    assert text.startswith("Claim [2].\n\n## Sources\n\n1. [Alpha study]")


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
        == r"1. [Battery \[wiki\] more](https://en.example.org/wiki/Battery_%28electricity%29)"
    )
    assert lines[-2] == "2. javascript:alert(1)"
    assert lines[-1] == "3. [Spaces](https://a.example.com/a%20b)"


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
