"""The simulator's generated answers: shape, realism, determinism and scale."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest

from sonarweb.simulator.corpus import generate_completion

QUESTION = "How do grid-scale sodium-ion batteries compare with lithium iron phosphate?"
MARKER = re.compile(r"\[(\d+)\]")


def content_of(completion: dict) -> str:
    return completion["choices"][0]["message"]["content"]


def body_of(completion: dict) -> str:
    return content_of(completion).split("</think>", 1)[-1].lstrip()


def first_appearances(text: str) -> list[int]:
    seen: dict[int, None] = {}
    for match in MARKER.finditer(text):
        seen.setdefault(int(match.group(1)), None)
    return list(seen)


def test_scales_to_forty_thousand_words_and_150_sources_quickly():
    # CPU time, not wall time: on a busy machine the wall clock also counts other processes.
    started = time.process_time()
    completion = generate_completion(QUESTION, words=40000, sources=150, images=30, seed="big")
    elapsed = time.process_time() - started
    assert elapsed < 1.0
    body = body_of(completion)
    assert 38000 <= len(body.split()) <= 44000
    assert set(first_appearances(body)) == set(range(1, 151))
    assert len(completion["citations"]) == len(completion["search_results"]) == 150
    assert len(completion["images"]) == 30
    # Spread over the answer, not piled up at its start or in a list at its end.
    first_half = body[: len(body) // 2]
    assert 30 <= len(set(first_appearances(first_half))) <= 140


def test_markers_number_citations_in_order_of_first_use():
    completion = generate_completion(QUESTION, words=1500, sources=12)
    body = body_of(completion)
    order = first_appearances(body)
    assert order == list(range(1, 13))
    assert re.search(r"\]\[", body), "expected runs of markers like [1][2]"
    assert [r["url"] for r in completion["search_results"]] == completion["citations"]


def test_markdown_has_the_usual_building_blocks():
    body = body_of(generate_completion(QUESTION, words=1500))
    lines = body.splitlines()
    assert lines[0].startswith("# ")
    assert any(line.startswith("## ") for line in lines)
    assert any(re.fullmatch(r"\|(---:?\|){3,}", line) for line in lines)
    assert re.search(r"^```(python|sql|bash|yaml|json)\n.+?\n```$", body, re.M | re.S)
    assert any(line.startswith("- ") for line in lines)
    assert "sodium-ion batteries" in body
    assert "lorem" not in body.lower()


@pytest.mark.parametrize("words", [120, 300])
def test_short_answers_still_cite_every_source_and_have_all_blocks(words):
    completion = generate_completion(QUESTION, model="sonar", words=words, sources=10)
    body = body_of(completion)
    assert set(first_appearances(body)) == set(range(1, 11))
    assert "```" in body and "|---" in body and "\n- " in body


@pytest.mark.parametrize(
    ("model", "thinks", "steps"),
    [
        ("sonar-deep-research", True, True),
        ("sonar-reasoning-pro", True, False),
        ("sonar-pro", False, False),
        ("sonar", False, False),
    ],
)
def test_think_block_and_reasoning_steps_by_model(model, thinks, steps):
    completion = generate_completion(QUESTION, model=model)
    content = content_of(completion)
    assert content.startswith("<think>\n") is thinks
    assert ("</think>" in content) is thinks
    message = completion["choices"][0]["message"]
    assert ("reasoning_steps" in message) is steps
    assert completion["model"] == model
    assert (completion["usage"]["reasoning_tokens"] > 0) is thinks


def test_reasoning_steps_search_and_fetch():
    completion = generate_completion(QUESTION, sources=20)
    steps = completion["choices"][0]["message"]["reasoning_steps"]
    kinds = {step["type"] for step in steps}
    assert kinds == {"web_search", "fetch_url_content"}
    search = next(s for s in steps if s["type"] == "web_search")
    assert search["thought"] and search["web_search"]["search_keywords"]
    assert {"title", "url"} <= set(search["web_search"]["search_results"][0])
    fetch = next(s for s in steps if s["type"] == "fetch_url_content")
    assert fetch["fetch_url_content"]["contents"][0]["url"] in completion["citations"]
    searched = {
        r["url"]
        for s in steps
        if s["type"] == "web_search"
        for r in s["web_search"]["search_results"]
    }
    assert searched == set(completion["citations"])
    queries = sum(len(s["web_search"]["search_keywords"]) for s in steps if "web_search" in s)
    assert completion["usage"]["num_search_queries"] == queries


def test_usage_numbers_add_up():
    usage = generate_completion(QUESTION, words=2000, sources=15)["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] > 2000
    assert usage["citation_tokens"] > 0
    cost = usage["cost"]
    parts = [
        "input_tokens_cost",
        "output_tokens_cost",
        "reasoning_tokens_cost",
        "request_cost",
        "citation_tokens_cost",
        "search_queries_cost",
    ]
    assert set(cost) == {*parts, "total_cost"}
    assert cost["total_cost"] == pytest.approx(sum(cost[p] for p in parts), abs=1e-9)
    assert 0 < cost["total_cost"] < 5


def test_urls_stay_on_reserved_example_domains():
    completion = generate_completion(QUESTION, words=3000, sources=40, images=10)
    hosts = {urlsplit(url).hostname for url in completion["citations"]}
    assert all(re.fullmatch(r"([a-z0-9-]+\.)+example\.(org|com|net)", h or "") for h in hosts)
    assert len(hosts) > 10
    assert len(set(completion["citations"])) == 40
    for image in completion["images"]:
        assert image["image_url"].startswith("https://images.example.org/")
        assert image["image_url"].endswith(".jpg")
        assert image["origin_url"] in completion["citations"]
        assert image["width"] > 0 and image["height"] > 0 and image["title"]
    for result in completion["search_results"]:
        assert result["title"] and result["snippet"] and result["source"] == "web"
        assert result["last_updated"] and (result["date"] is None or result["date"][:2] == "20")


def test_deterministic_for_a_seed():
    first = generate_completion(QUESTION, seed=7, job_id="job-1")
    assert generate_completion(QUESTION, seed=7, job_id="job-1") == first
    assert generate_completion(QUESTION, seed=8, job_id="job-1") != first
    assert first["id"] == "job-1"


def test_optional_parts_can_be_left_out():
    completion = generate_completion(QUESTION, images=0, related=False)
    assert "images" not in completion and "related_questions" not in completion
    with_related = generate_completion(QUESTION)
    assert 4 <= len(with_related["related_questions"]) <= 5
    assert all(q.endswith("?") for q in with_related["related_questions"])


def test_no_sources_means_no_markers():
    completion = generate_completion(QUESTION, sources=0, images=0)
    assert completion["citations"] == [] and completion["search_results"] == []
    assert not MARKER.search(body_of(completion))


@pytest.mark.parametrize("question", ["", "?", "Why?", "Qu'est-ce que l'énergie marémotrice ?"])
def test_odd_questions_still_produce_an_answer(question):
    completion = generate_completion(question, words=300, sources=5)
    assert len(body_of(completion).split()) >= 250
