from __future__ import annotations

import json

import pytest

from sonarweb.perplexity.payload import PayloadError
from sonarweb.perplexity.sonar import loads_job, parse_completion, parse_job, parse_page


def job(**extra):
    base = {
        "id": "abc",
        "model": "sonar-deep-research",
        "status": "IN_PROGRESS",
        "created_at": 1700000000,
    }
    base.update(extra)
    return base


def test_minimal_job_parses_with_defaults():
    parsed = parse_job(job())
    assert parsed.id == "abc"
    assert parsed.status == "IN_PROGRESS"
    assert parsed.created_at is not None and parsed.created_at.year == 2023
    assert parsed.started_at is None
    assert parsed.response is None
    assert not parsed.finished


def test_unknown_fields_and_nulls_are_tolerated():
    parsed = parse_job(
        job(
            status="COMPLETED",
            brand_new_field={"x": 1},
            started_at=None,
            error_message=None,
            response={
                "id": "r",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi [1]"}}],
                "citations": None,
                "search_results": [None, {"title": "no url"}, {"url": "https://a.example/x"}],
                "images": [
                    {"image_url": "https://i.example/a.png", "width": "640", "height": None}
                ],
                "usage": {"prompt_tokens": 3, "cost": {"total_cost": "0.25", "odd": "n/a"}},
                "related_questions": ["Why?", None, 3],
            },
        )
    )
    assert parsed.finished
    completion = parsed.response
    assert completion is not None
    assert completion.content == "Hi [1]"
    assert completion.citations == ()
    assert [r.url for r in completion.search_results] == ["https://a.example/x"]
    assert completion.images[0].width == 640 and completion.images[0].height is None
    assert completion.usage is not None and completion.total_cost == 0.25
    assert "odd" not in completion.usage.cost
    assert completion.related_questions == ("Why?", "3")


def test_content_as_chunks_joins_text_and_keeps_other_chunks():
    completion = parse_completion(
        {
            "choices": [
                {
                    "message": {
                        "content": [
                            {"type": "text", "text": "Part one. "},
                            {"type": "image_url", "image_url": {"url": "https://i.example/x.png"}},
                            {"type": "text", "text": "Part two."},
                            {"type": "pdf_url", "pdf_url": "https://d.example/a.pdf"},
                            {"type": "mystery"},
                            "bare string",
                        ]
                    }
                }
            ]
        }
    )
    assert completion is not None
    assert completion.content == "Part one. Part two.bare string"
    assert [(c.type, c.url) for c in completion.chunks] == [
        ("image_url", "https://i.example/x.png"),
        ("pdf_url", "https://d.example/a.pdf"),
    ]


def test_reasoning_steps_are_parsed():
    completion = parse_completion(
        {
            "choices": [
                {
                    "message": {
                        "content": "x",
                        "reasoning_steps": [
                            {
                                "thought": "look it up",
                                "type": "web_search",
                                "web_search": {"search_keywords": ["a", "b"]},
                            },
                            {
                                "thought": "read",
                                "type": "fetch_url_content",
                                "fetch_url_content": {"contents": [{"url": "https://a.example"}]},
                            },
                            "garbage",
                        ],
                    }
                }
            ]
        }
    )
    assert completion is not None
    steps = completion.reasoning_steps
    assert steps[0].search_keywords == ("a", "b")
    assert steps[1].fetched_urls == ("https://a.example",)
    assert len(steps) == 2


@pytest.mark.parametrize("raw", [{}, {"id": "x"}, {"status": "COMPLETED"}, [], "text", None])
def test_documents_that_are_not_jobs_raise(raw):
    with pytest.raises(PayloadError):
        parse_job(raw)


def test_list_document_is_not_a_job():
    with pytest.raises(PayloadError, match="list"):
        parse_job({"requests": [job()], "next_token": None})


def test_page_skips_broken_rows_and_reads_token():
    page = parse_page({"requests": [job(id="a"), {"bad": 1}, job(id="b")], "next_token": "t2"})
    assert [j.id for j in page.jobs] == ["a", "b"]
    assert page.next_token == "t2"
    assert parse_page({"requests": []}).next_token is None
    with pytest.raises(PayloadError):
        parse_page({"id": "a"})


def test_loads_job_round_trips_text():
    assert loads_job(json.dumps(job(id="zz"))).id == "zz"
    with pytest.raises(PayloadError):
        loads_job("<html>")


@pytest.mark.parametrize("odd", ["inf", "-inf", "nan", float("inf"), float("nan"), "1e999"])
def test_non_finite_numbers_are_treated_as_missing(odd):
    completion = parse_completion(
        {
            "usage": {"prompt_tokens": odd, "cost": {"total_cost": odd}},
            "images": [{"image_url": "https://i.example/a.png", "width": odd}],
        }
    )
    assert completion is not None
    assert completion.usage.prompt_tokens is None
    assert completion.total_cost is None
    assert completion.images[0].width is None
