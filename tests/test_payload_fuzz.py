"""Whatever upstream sends, parsing and rendering neither raise nor let markup through."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonarweb.answers.render import render_completion
from sonarweb.perplexity.payload import PayloadError
from sonarweb.perplexity.sonar import parse_completion, parse_job, parse_page

from .test_answers_security import assert_safe

HOSTILE = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "javascript:alert(1)",
        '"><img src=x onerror=alert(1)>',
        "[1](javascript:alert(1))",
        "<think>x</think>",
        "[3][99][1, 2]",
        "```\n[1]\n```",
        "https://ok.example.com/a",
        "\x00\u202e",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    HOSTILE,
)
JSON: Any = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12) | st.sampled_from(_keys := [
            "id", "status", "model", "created_at", "response", "choices", "message", "content",
            "citations", "search_results", "images", "related_questions", "usage", "cost",
            "reasoning_steps", "type", "text", "url", "image_url", "title", "snippet", "width",
        ]), inner, max_size=6),
    ),
    max_leaves=25,
)  # fmt: skip

# A completion-shaped document whose fields hold anything at all.
COMPLETION = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "message": st.fixed_dictionaries(
                        {},
                        optional={
                            "content": st.one_of(st.text(max_size=200), HOSTILE, JSON),
                            "reasoning_steps": JSON,
                        },
                    )
                },
            ),
            max_size=2,
        ),
        "citations": st.one_of(st.lists(st.one_of(HOSTILE, st.text(max_size=30))), JSON),
        "search_results": JSON,
        "images": JSON,
        "related_questions": JSON,
        "usage": JSON,
    },
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(JSON)
def test_parsers_only_ever_raise_payload_error(document: Any) -> None:
    for parse in (parse_job, parse_page):
        with contextlib.suppress(PayloadError):
            parse(document)
    parse_completion(document)


@FUZZ
@given(COMPLETION)
def test_any_completion_renders_safely(document: dict[str, Any]) -> None:
    completion = parse_completion(document)
    if completion is None:
        return
    assert_safe(render_completion(completion))
