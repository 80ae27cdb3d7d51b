"""The Agent API's Response JSON read into sonarweb's shapes, checked against the captured
shapes in tests/fixtures/agent_api_examples.json (made-up values, real shapes)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sonarweb.answers.render import render_completion
from sonarweb.perplexity import agent
from sonarweb.perplexity.documents import loads_document, parse_document
from sonarweb.perplexity.payload import PayloadError

EXAMPLES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "agent_api_examples.json").read_text()
)


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(EXAMPLES[name])


def with_text(doc: dict[str, Any], text: str, annotations: list[Any] | None = None) -> dict:
    doc["output"] = [item for item in doc["output"] if item.get("type") != "message"]
    doc["output"].append(
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": annotations or []}],
        }
    )
    return doc


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("create_response_queued", "CREATED"),
        ("get_in_progress", "IN_PROGRESS"),
        ("get_completed", "COMPLETED"),
        ("get_incomplete", "INCOMPLETE"),
        ("get_failed_http_200", "FAILED"),
        ("get_cancelled", "CANCELLED"),
    ],
)
def test_statuses_map_onto_sonarwebs_vocabulary(name: str, status: str) -> None:
    job = agent.parse_response(example(name))
    assert job.id.startswith("resp_")
    assert job.status == status
    assert job.finished == (status in {"COMPLETED", "INCOMPLETE", "FAILED", "CANCELLED"})


def test_an_unknown_status_is_kept_verbatim_and_still_running() -> None:
    doc = example("get_in_progress")
    doc["status"] = "requires_action"
    job = agent.parse_response(doc)
    assert job.status == "requires_action"
    assert not job.finished


def test_a_non_null_error_is_terminal_whatever_the_status() -> None:
    doc = example("get_in_progress")
    doc["error"] = {"message": "model exploded", "code": "server_error"}
    job = agent.parse_response(doc)
    assert job.status == "FAILED"
    assert job.error_message == "model exploded"


def test_failed_run_carries_its_message_and_the_preset_as_model() -> None:
    job = agent.parse_response(example("get_failed_http_200"))
    assert job.error_message == "The run failed: an internal error occurred."
    assert job.model == "medium"


def test_cancelled_run_is_not_an_error_message() -> None:
    job = agent.parse_response(example("get_cancelled"))
    assert job.error_message == ""
    assert job.incomplete_reason == "cancelled"


def test_completed_answer_text_sources_and_cost() -> None:
    doc = example("get_completed")
    job = agent.parse_response(doc)
    assert job.model == "openai/gpt-6-luna"
    answer = job.response
    assert answer is not None
    texts = [
        part["text"]
        for item in doc["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    ]
    assert texts and all(t.split("[")[0][:20] in answer.content for t in texts)
    urls = [r["url"] for item in doc["output"] if item["type"] == "search_results"
            for r in item["results"]]  # fmt: skip
    assert [r.url for r in answer.search_results][: len(set(urls))] == list(dict.fromkeys(urls))
    cost = doc["usage"]["cost"]
    assert answer.total_cost == pytest.approx(cost["total_cost"])
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == doc["usage"]["input_tokens"]
    assert answer.usage.completion_tokens == doc["usage"]["output_tokens"]


def test_usage_keeps_cache_tool_and_reasoning_figures() -> None:
    doc = example("get_completed")
    doc["usage"] = {
        "input_tokens": 1000,
        "output_tokens": 200,
        "total_tokens": 1200,
        "input_tokens_details": {"cache_read_input_tokens": 300, "cache_creation_input_tokens": 5},
        "output_tokens_details": {"reasoning_tokens": 150},
        "tool_calls_details": {"search_web": {"invocation": 3}, "fetch_url": {"invocation": 2}},
        "cost": {
            "currency": "USD",
            "input_cost": 0.0,
            "output_cost": 0.00054,
            "cache_read_cost": 0.0001,
            "cache_creation_cost": 0.00183,
            "tool_calls_cost": 0.01352,
            "tool_calls_cost_details": {"search_web": 0.003, "fetch_url": 0.01052},
            "total_cost": 0.01599,
        },
    }
    usage = agent.parse_usage(doc["usage"])
    assert usage is not None
    assert usage.reasoning_tokens == 150
    assert usage.cache_read_tokens == 300
    assert usage.cache_creation_tokens == 5
    assert usage.num_search_queries == 3
    assert usage.num_page_fetches == 2
    assert usage.cost["search_queries_cost"] == 0.003
    assert usage.cost["fetch_url_cost"] == 0.01052
    assert usage.cost["cache_creation_cost"] == 0.00183
    assert usage.total_cost == 0.01599
    html = render_completion(agent.parse_response(doc).response)
    assert "Reasoning" in html and "Page fetches" in html and "$0.016" in html


def test_markers_point_at_the_result_with_that_id() -> None:
    doc = example("get_completed")
    doc["output"] = [
        {
            "type": "search_results",
            "results": [
                {"id": 11, "url": "https://a.example/1", "title": "A", "snippet": "a"},
                {"id": 12, "url": "https://b.example/2", "title": "B", "snippet": "b"},
            ],
        },
        {
            "type": "search_results",
            "results": [{"id": 21, "url": "https://c.example/3", "title": "C", "snippet": "c"}],
        },
    ]
    doc = with_text(doc, "Cheap [web:11] and fast [12][web:21]. Lost [web:99] and [7].")
    answer = agent.parse_response(doc).response
    assert answer is not None
    assert answer.citations == ("https://a.example/1", "https://b.example/2", "https://c.example/3")
    assert answer.content == r"Cheap [1] and fast [2][3]. Lost \[web:99\] and \[7\]."
    html = render_completion(answer)
    assert html.count('class="cite"') == 3
    assert 'href="#source-3"' in html
    # A marker with no matching result stays plain text, never a link.
    assert "[web:99]" in html and "[7]" in html


def test_markers_inside_code_are_left_alone() -> None:
    doc = example("get_completed")
    doc["output"] = [
        {
            "type": "search_results",
            "results": [{"id": 1, "url": "https://a.example/", "title": "A"}],
        }
    ]
    text = "See [1].\n\n```python\nx = arr[1]\n```\n\nAnd `y[1]` too [web:1]."
    answer = agent.parse_response(with_text(doc, text)).response
    assert answer is not None
    assert "x = arr[1]" in answer.content and "`y[1]`" in answer.content
    assert answer.content.endswith("too [1].")


def test_sources_include_fetched_pages_deduplicated_by_url() -> None:
    doc = example("get_completed")
    doc["output"] = [
        {
            "type": "search_results",
            "results": [{"id": 1, "url": "https://a.example/", "title": "A"}],
        },
        {
            "type": "fetch_url_results",
            "contents": [
                {"url": "https://a.example/", "title": "A again", "snippet": "page text"},
                {"url": "https://d.example/page", "title": "D", "snippet": "long page text"},
            ],
        },
        {"type": "people_search_results", "results": [{"name": "someone"}]},
    ]
    doc = with_text(doc, "Text [1].")
    doc["output"].append("not an item")
    answer = agent.parse_response(doc).response
    assert answer is not None
    assert [r.url for r in answer.search_results] == [
        "https://a.example/",
        "https://d.example/page",
    ]
    assert answer.search_results[0].title == "A"
    assert answer.citations == ("https://a.example/",)


def test_url_citation_annotations_add_markers() -> None:
    doc = example("get_completed")
    doc["output"] = [
        {
            "type": "search_results",
            "results": [{"id": 5, "url": "https://a.example/", "title": "A"}],
        }
    ]
    text = "Alpha is true. Beta too."
    notes = [
        {"type": "url_citation", "url": "https://a.example/", "start_index": 0, "end_index": 13},
        {"type": "url_citation", "url": "https://new.example/", "start_index": 15, "end_index": 23},
        {"type": "url_citation", "url": "https://x.example/", "end_index": 999},
    ]
    answer = agent.parse_response(with_text(doc, text, notes)).response
    assert answer is not None
    assert answer.content == "Alpha is true[1]. Beta too[2]."
    assert answer.citations == ("https://a.example/", "https://new.example/")


def test_partial_output_while_running_is_read() -> None:
    job = agent.parse_response(example("get_in_progress"))
    assert job.response is not None
    assert len(job.response.search_results) == 2


def test_the_answer_is_untrusted_and_sanitized() -> None:
    doc = example("get_completed")
    doc["output"] = [
        {
            "type": "search_results",
            "results": [{"id": 1, "url": "javascript:alert(1)", "title": "<img src=x onerror=1>"}],
        }
    ]
    doc = with_text(doc, "<script>alert(1)</script> [1] [evil](javascript:alert(2))")
    html = render_completion(agent.parse_response(doc).response)
    assert "<script" not in html and "<img" not in html
    assert 'href="javascript' not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("raw", [None, [], {}, {"id": "resp_x"}, {"status": "completed"}, "x"])
def test_what_is_not_a_run_is_refused(raw: Any) -> None:
    with pytest.raises(PayloadError):
        agent.parse_response(raw)


def test_documents_of_either_protocol_are_told_apart() -> None:
    run = parse_document(example("get_completed"))
    assert run.status == "COMPLETED" and run.response is not None
    sonar = loads_document(
        json.dumps(
            {
                "id": "3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e11",
                "status": "COMPLETED",
                "model": "sonar-deep-research",
                "response": {
                    "choices": [{"message": {"content": "Hi [1]"}}],
                    "citations": ["https://a.example/"],
                },
            }
        )
    )
    assert sonar.status == "COMPLETED" and sonar.response is not None
    assert sonar.response.citations == ("https://a.example/",)


def test_create_body_has_only_mapped_fields() -> None:
    body = agent.build_request(
        "How?",
        preset="high",
        domains=["example.net", "-pinterest.com"],
        recency="year",
        effort="low",
        max_output_tokens=4000,
        instructions="Be brief.",
    )
    assert body == {
        "input": "How?",
        "background": True,
        "preset": "high",
        "tools": [
            {
                "type": "web_search",
                "filters": {
                    "search_domain_filter": ["example.net", "-pinterest.com"],
                    "search_recency_filter": "year",
                },
            }
        ],
        "reasoning": {"effort": "low"},
        "max_output_tokens": 4000,
        "instructions": "Be brief.",
    }
    assert agent.build_request("Q") == {"input": "Q", "background": True, "preset": "medium"}
    with_model = agent.build_request("Q", model="perplexity/sonar")
    assert with_model["tools"] == [{"type": "web_search"}] and "preset" not in with_model
    # The captured create request, rebuilt.
    captured = example("create_request")
    filters = captured["tools"][0]["filters"]
    rebuilt = agent.build_request(
        captured["input"],
        preset=captured["preset"],
        domains=filters["search_domain_filter"],
        recency=filters["search_recency_filter"],
    )
    assert rebuilt == captured
