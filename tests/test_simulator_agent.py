"""The simulator's Agent API (and the Sonar API's retirement), spoken to over real HTTP."""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sonarweb.simulator import faults
from sonarweb.simulator.agent import RESPONSE_KEYS, generate_answer
from sonarweb.simulator.app import SONAR_RETIRED_BODY, Simulator
from sonarweb.simulator.demo import (
    DEMO_AGENT_COMPLETED_ID,
    DEMO_AGENT_FAILED_ID,
    DEMO_AGENT_RUN_IDS,
    DEMO_AGENT_RUNNING_ID,
    DEMO_AGENT_TRACKED,
    DEMO_KEY,
    DEMO_SONAR_ARCHIVED,
    RUN_FAILED_ERROR_MESSAGE,
    seed_demo_runs,
    sonar_archive_samples,
)
from sonarweb.simulator.server import RunningServer, serve

KEY = "pplx-simtest-aaaa1111"
OTHER_KEY = "pplx-simtest-bbbb2222"
START = 1_760_000_000.0
QUESTION = "How well do heat pumps work in cold climates?"
RUN_ID = re.compile(r"^resp_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MARKER = re.compile(r"\[(web:)?(\d+)\]")
UNKNOWN_ID = "resp_00000000-0000-4000-8000-000000000000"
EXAMPLES = Path("/work/shared/reference/perplexity-agent-api-examples.json")

# The key sets of the contract's example bodies (perplexity-agent-api-examples.json), level by
# level; test_example_shapes_are_those_of_the_reference_file checks them against the file.
_TOP = {
    "id", "object", "status", "model", "created_at", "completed_at", "background", "store",
    "error", "incomplete_details", "instructions", "max_output_tokens", "max_tool_calls",
    "metadata", "parallel_tool_calls", "previous_response_id", "reasoning", "service_tier",
    "temperature", "text", "tool_choice", "tools", "top_p", "truncation", "user", "output",
    "usage",
}  # fmt: skip
_TEXT = {"text": {"format"}, "text.format": {"type"}}
_SEARCH = {
    "output[search_results]": {"type", "queries", "results"},
    "output[search_results].results": {
        "id", "url", "title", "snippet", "source", "date", "last_updated",
    },
}  # fmt: skip
_FETCH = {
    "output[fetch_url_results]": {"type", "contents"},
    "output[fetch_url_results].contents": {"url", "title", "snippet"},
}
_MESSAGE = {
    "output[message]": {"type", "id", "role", "status", "content"},
    "output[message].content": {"type", "text", "annotations"},
}
_USAGE = {
    "usage": {
        "input_tokens", "output_tokens", "total_tokens", "input_tokens_details",
        "output_tokens_details", "tool_calls_details", "cost",
    },
    "usage.input_tokens_details": {"cache_creation_input_tokens", "cache_read_input_tokens"},
    "usage.output_tokens_details": {"reasoning_tokens"},
    "usage.tool_calls_details": {"search_web", "fetch_url"},
    "usage.tool_calls_details.search_web": {"invocation", "cost_usd"},
    "usage.tool_calls_details.fetch_url": {"invocation", "cost_usd"},
    "usage.cost": {
        "currency", "input_cost", "output_cost", "cache_creation_cost", "cache_read_cost",
        "tool_calls_cost", "tool_calls_cost_details", "total_cost",
    },
    "usage.cost.tool_calls_cost_details": {"search_web", "fetch_url"},
}  # fmt: skip
_ERROR = {"error": {"message", "type", "code"}}
EXAMPLE_SHAPES: dict[str, dict[str, set[str]]] = {
    "create_response_queued": {"": _TOP, **_TEXT},
    "get_in_progress": {"": _TOP, **_TEXT, **_SEARCH},
    "get_completed": {"": _TOP, **_TEXT, **_SEARCH, **_FETCH, **_MESSAGE, **_USAGE},
    "get_incomplete": {
        "": _TOP,
        **_TEXT,
        **_SEARCH,
        **_FETCH,
        **_MESSAGE,
        **_USAGE,
        "incomplete_details": {"reason"},
    },
    "get_failed_http_200": {"": _TOP, **_TEXT, **_ERROR},
    "cancel_ack": {"": {"response_id", "status"}},
    "get_cancelled": {"": _TOP, **_TEXT, **_ERROR, "incomplete_details": {"reason"}},
    "error_400_unknown_field": {"": {"error"}, "error": {"message", "type", "code", "param"}},
    "error_404": {"": {"error"}, **_ERROR},
    "error_400_cancel_terminal": {"": {"error"}, **_ERROR},
    "sonar_403_retired": {"": {"error"}, **_ERROR},
}
# Keys the simulator adds to the examples', each documented in the contract from live captures:
# the five top-level keys of a Response that make the 32 (§3.1), cached_tokens and fetch_url's
# token_usage (§3.3).
DOCUMENTED_EXTRAS: dict[str, set[str]] = {
    "response": {"frequency_penalty", "presence_penalty", "top_logprobs", "prompt_cache_key",
                 "safety_identifier"},
    "usage.input_tokens_details": {"cached_tokens"},
    "usage.tool_calls_details.fetch_url": {"token_usage"},
}  # fmt: skip
ERROR_404 = {"error": {"message": "resource not found", "type": "not_found", "code": 404}}
INVALID_ID = {"error": {"message": "invalid response id", "type": "invalid_request", "code": 400}}
CANCEL_TERMINAL = {
    "error": {
        "message": "the run is already terminal and cannot be cancelled",
        "type": "invalid_request",
        "code": 400,
    }
}
SONAR_403 = {
    "error": {
        "message": "Sonar is now the Agent API. Use /v1/responses instead of /v1/sonar. Migrate "
        "here: https://docs.perplexity.ai/docs/agent-api/migrate-from-sonar/overview",
        "type": "chat_completions_not_available",
        "code": 403,
    }
}


def structure(document: Any) -> dict[str, set[str]]:
    """The keys of a body level by level, output items by type: what two bodies with different
    values but the same shape have in common."""
    found: dict[str, set[str]] = {}

    def note(path: str, value: Any) -> None:
        if isinstance(value, dict):
            found.setdefault(path, set()).update(value)

    if not isinstance(document, dict):
        return found
    note("", document)
    for name in ("error", "incomplete_details", "text", "usage"):
        note(name, document.get(name))
    if isinstance(document.get("text"), dict):
        note("text.format", document["text"].get("format"))
    for item in document.get("output") or []:
        kind = item.get("type")
        note(f"output[{kind}]", item)
        for field in ("results", "contents", "content"):
            for part in item.get(field) or []:
                note(f"output[{kind}].{field}", part)
    usage = document.get("usage")
    if isinstance(usage, dict):
        for name in ("input_tokens_details", "output_tokens_details", "tool_calls_details", "cost"):
            note(f"usage.{name}", usage.get(name))
        for tool, value in (usage.get("tool_calls_details") or {}).items():
            note(f"usage.tool_calls_details.{tool}", value)
        note("usage.cost.tool_calls_cost_details", (usage.get("cost") or {}).get(
            "tool_calls_cost_details"))  # fmt: skip
    return found


def assert_shaped_like(document: Any, example: str) -> None:
    """Same keys as the example at every level it has; a level the example lacks only if the
    completed example has it (partial output, kept on a cancel)."""
    expected = EXAMPLE_SHAPES[example]
    actual = structure(document)
    for path, keys in expected.items():
        extras = DOCUMENTED_EXTRAS.get("response" if path == "" and "object" in keys else path)
        assert actual.get(path) == keys | (extras or set()), (example, path)
    known = EXAMPLE_SHAPES["get_completed"]
    for path in actual:
        assert path in expected or path in known, (example, path)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator([KEY, OTHER_KEY], clock=clock, queue_seconds=2, run_seconds=20)


@pytest.fixture
def server(sim: Simulator) -> Iterator[RunningServer]:
    with serve(sim) as running:
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5, headers=bearer()) as client:
        yield client


def start(http: httpx.Client, path: str = "/v1/agent", **fields: Any) -> httpx.Response:
    body = {"preset": "medium", "input": QUESTION, "background": True, **fields}
    return http.post(path, json=body)


def get_run(http: httpx.Client, run_id: str, *, alias: bool = False) -> httpx.Response:
    return http.get(f"/v1/{'responses' if alias else 'agent'}/{run_id}")


def cancel(http: httpx.Client, run_id: str, *, alias: bool = False) -> httpx.Response:
    return http.post(f"/v1/{'responses' if alias else 'agent'}/{run_id}/cancel")


def text_of(document: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in document["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def result_ids(document: dict[str, Any]) -> list[int]:
    return [
        result["id"]
        for item in document["output"]
        if item["type"] == "search_results"
        for result in item["results"]
    ]


# -- the Sonar API's retirement ----------------------------------------------------------------

SONAR_PATHS = [
    ("GET", "/v1/async/sonar", "list"),
    ("POST", "/v1/async/sonar", "create"),
    ("GET", "/v1/async/sonar/3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e11", "get"),
    ("POST", "/chat/completions", "create"),
    ("POST", "/v1/chat/completions", "create"),
    ("GET", "/async/chat/completions", "list"),
    ("POST", "/async/chat/completions", "create"),
    ("GET", "/v1/async/chat/completions/abc", "get"),
    ("DELETE", "/v1/async/sonar", None),
    ("GET", "/v1/async/sonar/a/b", None),
]


@pytest.mark.parametrize(("method", "path", "endpoint"), SONAR_PATHS)
def test_retired_sonar_paths_answer_403_after_authentication(sim, http, method, path, endpoint):
    body = {"request": {"model": "sonar", "messages": [{"role": "user", "content": "hi"}]}}
    response = http.request(method, path, json=body)
    assert response.status_code == 403
    assert response.json() == SONAR_403 == SONAR_RETIRED_BODY
    assert response.json() == json.loads(json.dumps(SONAR_403))
    for headers in ({"Authorization": ""}, bearer("pplx-not-a-known-key")):
        unauthorised = http.request(method, path, json=body, headers=headers)
        assert unauthorised.status_code == 401
        assert isinstance(unauthorised.json()["detail"], str)
    calls = sim.calls.all()
    assert [(c.method, c.endpoint, c.status) for c in calls] == [
        (method, endpoint, 403),
        (method, endpoint, 401),
        (method, endpoint, 401),
    ]
    assert not sim._jobs


def test_retirement_can_be_switched_off_and_on(sim, http):
    job_id = sim.add_job(KEY)
    assert http.get(f"/v1/async/sonar/{job_id}").status_code == 403
    sim.sonar_retired = False
    assert http.get(f"/v1/async/sonar/{job_id}").json()["id"] == job_id
    # Live, the chat completions paths are not served at all, as before.
    assert http.post("/chat/completions", json={}).status_code == 404
    assert http.post("/_sim/retired", json={"retired": True}).json() == {"retired": True}
    assert sim.sonar_retired is True
    assert http.get("/_sim/retired").json() == {"retired": True}
    assert http.get(f"/v1/async/sonar/{job_id}").status_code == 403
    assert http.post("/_sim/retired", json={"retired": False}).status_code == 200
    assert http.get("/v1/async/sonar").status_code == 200
    assert http.post("/_sim/retired", json={"retired": "yes"}).status_code == 400
    assert http.post("/_sim/retired", json={}).status_code == 400


def test_faults_still_apply_to_retired_sonar_calls(sim, http):
    sim.inject("server_error", endpoint="get")
    assert http.get("/v1/async/sonar/x").status_code == 500
    sim.inject("list_instead_of_job")
    assert http.get("/v1/async/sonar/x").status_code == 403


# -- create --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/agent", "/v1/responses"])
def test_background_create_answers_a_queued_response(sim, http, path):
    response = start(http, path)
    assert response.status_code == 200
    document = response.json()
    assert list(document) == list(RESPONSE_KEYS) and len(document) == 32
    assert RUN_ID.match(document["id"])
    assert document["object"] == "response"
    assert (document["status"], document["model"]) == ("queued", "medium")
    assert document["output"] == [] and document["usage"] is None
    assert document["store"] is True and document["background"] is True
    assert document["created_at"] == int(START) and document["completed_at"] is None
    assert document["error"] is None and document["incomplete_details"] is None
    assert document["metadata"] == {} and document["tools"] == []
    assert_shaped_like(document, "create_response_queued")
    assert response.headers["x-request-id"] == document["id"].removeprefix("resp_")
    assert sim.run_status(document["id"]) == "queued"
    [call] = sim.calls.all()
    assert (call.method, call.path, call.endpoint, call.job_id, call.status) == (
        "POST", path, "start", document["id"], 200,
    )  # fmt: skip


def test_the_contracts_example_request_is_accepted_and_recorded(sim, http):
    request = json.loads(json.dumps(EXAMPLE_REQUEST))
    response = http.post("/v1/agent", json=request)
    assert response.status_code == 200
    assert response.json()["tools"] == request["tools"]
    assert sim.created_bodies == [request]
    assert http.get("/_sim/created").json() == {"bodies": [request]}
    sim.reset_calls()
    assert sim.created_bodies == [] and len(sim.calls) == 0


EXAMPLE_REQUEST = {
    "preset": "medium",
    "input": "How well do heat pumps work in cold climates?",
    "background": True,
    "tools": [
        {
            "type": "web_search",
            "filters": {
                "search_domain_filter": ["example.net", "-pinterest.com"],
                "search_recency_filter": "year",
            },
        }
    ],
}


def test_every_documented_field_is_accepted(sim, http, clock):
    body = {
        "input": [
            {"role": "system", "content": "Be brief."},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "Why do bridges sway?"},
                {"type": "input_image", "image_url": "https://example.org/bridge.png"},
            ]},
        ],
        "preset": "deep-research",
        "model": "openai/gpt-6-sol",
        "models": ["openai/gpt-6-sol", "openai/gpt-6-luna"],
        "instructions": "Cite sources.",
        "tools": [
            {
                "type": "web_search",
                "filters": {
                    "search_domain_filter": ["example.org"],
                    "search_after_date_filter": "01/31/2025",
                    "search_before_date_filter": "2026-09-01",
                    "last_updated_after_filter": "2025-01-01",
                    "last_updated_before_filter": "12/31/2026",
                },
                "max_tokens": 5000,
                "max_tokens_per_page": 1000,
                "search_context_size": "high",
                "user_location": {"city": "Oslo", "country": "NO", "latitude": 59.9,
                                  "longitude": 10.7, "region": "Oslo"},
            },
            {"type": "fetch_url", "max_urls": 3},
            {"type": "function", "name": "lookup", "parameters": {}, "strict": True},
        ],
        "reasoning": {"effort": "xhigh"},
        "max_output_tokens": 8000,
        "max_steps": 10,
        "background": True,
        "store": True,
        "metadata": {"ticket": "42"},
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}},
        "stream": False,
        "language_preference": "en",
        "temperature": 0.2,
        "top_p": 0.9,
        "tool_choice": {"type": "web_search"},
    }  # fmt: skip
    response = http.post("/v1/agent", json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    # The preset's old name is reported by its current one; "models" wins over "model".
    assert document["model"] == "medium"
    assert document["instructions"] == "Cite sources."
    assert document["reasoning"] == {"effort": "xhigh"}
    assert (document["temperature"], document["top_p"]) == (0.2, 0.9)
    assert document["metadata"] == {}
    clock.now += 60
    finished = get_run(http, document["id"]).json()
    assert finished["status"] == "completed"
    assert finished["model"] == "openai/gpt-6-sol"
    assert "bridges" in text_of(finished).lower()


def test_create_without_background_answers_the_finished_run_at_once(http):
    document = start(http, background=False).json()
    assert document["status"] == "completed" and document["background"] is False
    assert document["model"] == "openai/gpt-6-luna"
    assert document["usage"]["total_tokens"] > 0
    assert get_run(http, document["id"]).json() == document


def test_a_small_output_cap_ends_incomplete_with_empty_output(http, clock):
    document = start(http, max_output_tokens=16).json()
    assert document["status"] == "queued" and document["max_output_tokens"] == 16
    clock.now += 60
    finished = get_run(http, document["id"]).json()
    assert finished["status"] == "incomplete"
    assert finished["incomplete_details"] == {"reason": "max_output_tokens"}
    assert finished["output"] == []
    usage = finished["usage"]
    assert usage["output_tokens"] == usage["output_tokens_details"]["reasoning_tokens"] == 16
    assert usage["cost"]["total_cost"] == round(
        usage["cost"]["input_cost"] + usage["cost"]["output_cost"], 5
    )


def test_a_bare_model_without_tools_answers_ungrounded(http, clock):
    document = start(http, preset=None, model="perplexity/sonar").json()
    assert document["model"] == "perplexity/sonar"
    clock.now += 60
    finished = get_run(http, document["id"]).json()
    assert finished["model"] == "perplexity/sonar" and finished["tools"] == []
    assert [item["type"] for item in finished["output"]] == ["message"]
    assert "tool_calls_details" not in finished["usage"]
    grounded = start(http, preset=None, model="perplexity/sonar", tools=[{"type": "web_search"}])
    clock.now += 60
    finished = get_run(http, grounded.json()["id"]).json()
    kinds = [item["type"] for item in finished["output"]]
    assert kinds[-1] == "message" and set(kinds[:-1]) == {"search_results"}


def test_store_false_makes_the_run_unreadable(http):
    document = start(http, store=False).json()
    assert document["store"] is False
    assert get_run(http, document["id"]).json() == ERROR_404
    assert cancel(http, document["id"]).status_code == 404


def test_previous_response_id_must_name_a_run_of_the_key(http):
    first = start(http).json()["id"]
    assert start(http, previous_response_id=first).status_code == 200
    other = http.post(
        "/v1/agent", json={"preset": "fast", "input": "x", "previous_response_id": first},
        headers=bearer(OTHER_KEY),
    )  # fmt: skip
    assert other.status_code == 400
    assert other.json()["error"]["param"] == "previous_response_id"
    assert start(http, previous_response_id=UNKNOWN_ID).status_code == 400


def test_create_limit_applies_to_agent_creates(clock):
    sim = Simulator([KEY, OTHER_KEY], clock=clock, create_limit_per_minute=2)
    with serve(sim) as running, httpx.Client(base_url=running.url, headers=bearer()) as http:
        assert start(http).status_code == 200
        clock.now += 15
        assert start(http).status_code == 200
        limited = start(http)
        assert limited.status_code == 429
        assert limited.json()["error"]["type"] == "request_rate_limit_exceeded"
        assert limited.json()["error"]["code"] == 429
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert limited.headers["x-ratelimit-reset"] == str(int(START) + 60)
        assert "Retry-After" not in limited.headers
        assert start(http, path="/v1/responses").status_code == 429
        assert http.post("/v1/agent", json=EXAMPLE_REQUEST, headers=bearer(OTHER_KEY)).is_success
        clock.now += 46
        assert start(http).status_code == 200
        assert len(sim.created_bodies) == 4


# -- validation ----------------------------------------------------------------------------------


def unknown_field(name: str) -> dict[str, Any]:
    return {
        "error": {
            "message": f'invalid request body: json: unknown field "{name}"',
            "type": "invalid_request",
            "code": 400,
            "param": name,
        }
    }


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"return_images": True}, "return_images"),
        ({"search_mode": "academic"}, "search_mode"),
        ({"text": {"format": {"type": "text"}}}, "text"),
        ({"tools": [{"type": "web_search", "max_results": 5}]}, "max_results"),
        ({"tools": [{"type": "web_search", "filters": {"search_mode": "sec"}}]}, "search_mode"),
        (
            {"tools": [{"type": "web_search", "user_location": {"city": "Oslo", "zip": "1"}}]},
            "zip",
        ),
        ({"tools": [{"type": "fetch_url", "max_pages": 2}]}, "max_pages"),
        ({"reasoning": {"effort": "low", "summary": "auto"}}, "summary"),
        ({"response_format": {"type": "json_schema", "text": {}}}, "text"),
        ({"input": [{"role": "user", "content": "hi", "name": "x"}]}, "name"),
    ],
)
def test_unknown_fields_anywhere_are_400_naming_the_field(sim, http, fields, name):
    response = start(http, **fields)
    assert response.status_code == 400
    assert response.json() == unknown_field(name)
    assert_shaped_like(response.json(), "error_400_unknown_field")
    assert not sim._runs and sim.created_bodies == []


@pytest.mark.parametrize(
    ("fields", "kind", "param", "message"),
    [
        ({"input": ""}, "invalid_request", None, "input cannot be empty"),
        ({"input": "   "}, "invalid_request", None, "input cannot be empty"),
        ({"input": None}, "invalid_request", "input", "input array cannot be empty"),
        ({"input": []}, "invalid_request", "input", "input array cannot be empty"),
        ({"input": 42}, "invalid_request", "input", "input array cannot be empty"),
        ({"input": {"text": "hi"}}, "invalid_request", "input", "input array cannot be empty"),
        ({"preset": None}, "invalid_request", "model", "one of model, models or preset"),
        ({"preset": "ultra"}, "invalid_model", "preset", 'preset "ultra" is not supported'),
        ({"preset": None, "model": "sonar"}, "invalid_model", "model", "not supported"),
        ({"preset": None, "model": "sonar-deep-research"}, "invalid_model", "model", "not"),
        ({"models": ["openai/gpt-6-luna", "x/y"]}, "invalid_model", "models", '"x/y"'),
        ({"models": []}, "invalid_parameter", "models", "1 to 5"),
        ({"max_output_tokens": "8000"}, "invalid_parameter", "max_output_tokens", "integer"),
        ({"max_output_tokens": 0}, "invalid_parameter", "max_output_tokens", "at least 1"),
        ({"max_output_tokens": True}, "invalid_parameter", "max_output_tokens", "integer"),
        ({"max_output_tokens": 1.5}, "invalid_parameter", "max_output_tokens", "integer"),
        ({"max_steps": 0}, "invalid_parameter", "max_steps", "at least 1"),
        ({"max_steps": 11}, "invalid_parameter", "max_steps", "at most 10"),
        ({"background": "true"}, "invalid_parameter", "background", "boolean"),
        ({"temperature": 3}, "invalid_parameter", "temperature", "between 0 and 2"),
        ({"top_p": -1}, "invalid_parameter", "top_p", "between 0 and 1"),
        ({"instructions": ["x"]}, "invalid_parameter", "instructions", "string"),
        ({"reasoning": {"effort": "max"}}, "invalid_parameter", "reasoning.effort", "xhigh"),
        ({"reasoning": "high"}, "invalid_parameter", "reasoning", "object"),
        ({"tool_choice": "sometimes"}, "invalid_parameter", "tool_choice", "auto"),
        ({"tools": {"type": "web_search"}}, "invalid_parameter", "tools", "array"),
        ({"tools": [{"type": "telepathy"}]}, "invalid_parameter", "tools[0].type", "one of"),
        (
            {"tools": [{"type": "web_search", "filters": {"search_recency_filter": "decade"}}]},
            "invalid_parameter",
            "tools[0].filters.search_recency_filter",
            "hour day week month year",
        ),
        (
            {"tools": [{"type": "web_search", "filters": {"search_after_date_filter": "soon"}}]},
            "invalid_date_format",
            "tools[0].filters.search_after_date_filter",
            "MM/DD/YYYY",
        ),
        (
            {"tools": [{"type": "web_search", "search_context_size": "huge"}]},
            "invalid_parameter",
            "tools[0].search_context_size",
            "low medium high",
        ),
        ({"metadata": {"k": 1}}, "invalid_parameter", "metadata.k", "string"),
        (
            {"preset": None, "model": "anthropic/claude-opus-5-5"},
            "invalid_request",
            None,
            "max_output_tokens is required when using Anthropic models",
        ),
        ({"stream": True}, "invalid_parameter", "stream", "not supported"),
        ({"response_format": {"type": "json_schema"}}, "invalid_parameter", None, "json_schema"),
        ({"input": [{"role": "robot", "content": "hi"}]}, "invalid_parameter", "input[0].role", ""),
        ({"input": [{"type": "image", "url": "x"}]}, "invalid_parameter", "input[0].type", ""),
        ({"input": [{"role": "user", "content": ""}]}, "invalid_request", None, "cannot be empty"),
    ],
)
def test_invalid_values_are_400_with_the_contracts_envelope(sim, http, fields, kind, param,
                                                            message):  # fmt: skip
    response = start(http, **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == kind and error["code"] == 400
    assert message in error["message"]
    if param is not None:
        assert error["param"] == param
    assert not sim._runs


@pytest.mark.parametrize("content", [b"{", b"", b"not json", b"\xff\xfe"])
def test_a_body_that_is_not_json_is_a_400(http, content):
    response = http.post("/v1/agent", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert response.json()["error"]["message"].startswith("invalid request body")


@pytest.mark.parametrize("body", [[], [1], "text", 3, None])
def test_a_body_that_is_no_object_is_a_400(http, body):
    response = http.post("/v1/agent", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


# -- a run's life --------------------------------------------------------------------------------


def test_a_run_goes_queued_in_progress_completed_as_the_clock_moves(sim, http, clock):
    run_id = start(http).json()["id"]
    queued = get_run(http, run_id).json()
    assert (queued["status"], queued["created_at"]) == ("queued", int(START))

    clock.now += 2
    running = get_run(http, run_id, alias=True).json()
    assert running["status"] == "in_progress"
    assert running["model"] == "medium" and running["usage"] is None
    assert running["created_at"] == int(START) + 30 and running["completed_at"] is None
    assert [item["type"] for item in running["output"]] == ["search_results", "message"]
    assert running["output"][1]["status"] == "in_progress"
    assert running["tools"] == [{"type": "web_search"}, {"type": "fetch_url"}]
    assert_shaped_like(running, "get_in_progress")

    clock.now += 19.5
    assert sim.run_status(run_id) == "in_progress"
    clock.now += 0.5
    done = get_run(http, run_id).json()
    assert done["status"] == "completed"
    assert done["model"] == "openai/gpt-6-luna"
    assert done["created_at"] == done["completed_at"] == int(START) + 40
    assert done["error"] is None and done["incomplete_details"] is None
    assert_shaped_like(done, "get_completed")
    # The partial text was the start of the answer, and the answer does not change.
    assert text_of(done).startswith(text_of(running))
    assert len(text_of(done)) > len(text_of(running))
    assert get_run(http, run_id).json() == done
    assert sim.calls.count(endpoint="run", job_id=run_id) == 4


def test_a_long_run_finishes_at_its_own_time(sim, http, clock):
    run_id = sim.add_run(KEY, queue_seconds=5, run_seconds=600)
    clock.now += 605
    done = get_run(http, run_id).json()
    assert done["created_at"] == done["completed_at"] == int(START) + 605


@pytest.mark.parametrize(
    ("preset", "model", "resolved"),
    [
        ("fast", None, "openai/gpt-6-luna"),
        ("low", None, "openai/gpt-6-luna"),
        ("medium", None, "openai/gpt-6-luna"),
        ("high", None, "openai/gpt-6-sol"),
        ("xhigh", None, "anthropic/claude-opus-5-5"),
        ("high", "xai/grok-4.5", "xai/grok-4.5"),
        (None, "perplexity/sonar", "perplexity/sonar"),
    ],
)
def test_model_is_the_preset_until_completed_then_resolved(sim, http, clock, preset, model,
                                                           resolved):  # fmt: skip
    run_id = sim.add_run(KEY, preset=preset, model=model, words=120, sources=3)
    assert get_run(http, run_id).json()["model"] == (preset or model)
    clock.now += 3
    assert get_run(http, run_id).json()["model"] == (preset or model)
    clock.now += 30
    assert get_run(http, run_id).json()["model"] == resolved


def test_failed_runs_answer_http_200_with_an_error(sim, http, clock):
    run_id = sim.add_run(KEY, outcome="failed", error_message="Out of research budget.")
    clock.now += 30
    response = get_run(http, run_id)
    assert response.status_code == 200
    failed = response.json()
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "message": "Out of research budget.",
        "code": "server_error",
        "type": "internal_error",
    }
    assert failed["model"] == "medium"
    assert failed["output"] == [] and failed["usage"] is None and failed["completed_at"] is None
    assert_shaped_like(failed, "get_failed_http_200")


def test_incomplete_runs_keep_part_of_the_text_and_their_usage(sim, http, clock):
    run_id = sim.add_run(KEY, outcome="incomplete")
    clock.now += 30
    incomplete = get_run(http, run_id).json()
    assert incomplete["status"] == "incomplete"
    assert incomplete["incomplete_details"] == {"reason": "max_output_tokens"}
    assert incomplete["model"] == "openai/gpt-6-luna"
    assert incomplete["completed_at"] == incomplete["created_at"]
    assert incomplete["output"][-1]["status"] == "incomplete"
    answer = sim._runs[run_id].answer
    assert answer is not None
    assert answer.text.startswith(text_of(incomplete)) and answer.text != text_of(incomplete)
    assert 0 < incomplete["usage"]["output_tokens"] < answer.usage()["output_tokens"]
    assert_shaped_like(incomplete, "get_incomplete")
    other = sim.add_run(KEY, outcome="incomplete", incomplete_reason="content_filter")
    clock.now += 30
    assert get_run(http, other).json()["incomplete_details"] == {"reason": "content_filter"}


def test_a_run_that_ends_cancelled_by_itself(sim, http, clock):
    run_id = sim.add_run(KEY, outcome="cancelled")
    clock.now += 30
    cancelled = get_run(http, run_id).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"] == {"code": "cancelled", "message": "cancelled", "type": "cancelled"}
    assert_shaped_like(cancelled, "get_cancelled")


def test_a_given_document_is_served_verbatim_once_finished(sim, http, clock):
    document = {"id": "resp_x", "status": "completed", "output": [{"type": "mystery"}], "new": 1}
    run_id = sim.add_run(KEY, document=document, queue_seconds=0, run_seconds=5)
    assert get_run(http, run_id).json()["status"] == "in_progress"
    clock.now += 5
    assert get_run(http, run_id).json() == document


@pytest.mark.parametrize(
    "run_id",
    ["abc", "resp_", "resp_123", "3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e11",
     "resp_3F6C1E2A-8B4D-4C71-9A5E-2D7F0B9C4E11", "resp_3f6c1e2a8b4d4c719a5e2d7f0b9c4e11"],
)  # fmt: skip
def test_malformed_ids_are_400_invalid_response_id(sim, http, run_id):
    response = get_run(http, run_id)
    assert (response.status_code, response.json()) == (400, INVALID_ID)
    response = cancel(http, run_id)
    assert (response.status_code, response.json()) == (400, INVALID_ID)
    assert {c.endpoint for c in sim.calls.all()} == {"run", "cancel"}


def test_unknown_and_other_keys_runs_are_404(sim, http):
    mine = sim.add_run(KEY)
    theirs = sim.add_run(OTHER_KEY)
    for run_id in (theirs, UNKNOWN_ID):
        response = get_run(http, run_id)
        assert (response.status_code, response.json()) == (404, ERROR_404)
        assert_shaped_like(response.json(), "error_404")
        assert cancel(http, run_id).json() == ERROR_404
    assert get_run(http, mine).status_code == 200
    assert http.get(f"/v1/agent/{theirs}", headers=bearer(OTHER_KEY)).status_code == 200


def test_runs_expire_after_retention(sim, http):
    run_id = sim.add_run(KEY, created_ago=3600)
    assert get_run(http, run_id).status_code == 200
    sim.advance(7 * 86400 - 3600 + 1)
    assert get_run(http, run_id).status_code == 404
    assert sim.run_status(run_id) is None


def test_add_run_rejects_what_upstream_could_not_have(sim):
    with pytest.raises(ValueError, match="outcome"):
        sim.add_run(KEY, outcome="COMPLETED")
    with pytest.raises(ValueError, match="preset"):
        sim.add_run(KEY, preset="ultra")
    with pytest.raises(ValueError, match="model"):
        sim.add_run(KEY, preset=None)
    with pytest.raises(ValueError, match="run_id"):
        sim.add_run(KEY, run_id="3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e11")
    fixed = "resp_3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e11"
    assert sim.add_run(KEY, run_id=fixed, preset="deep-research") == fixed
    assert sim._runs[fixed].preset == "medium"


# -- cancel --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", [False, True])
def test_cancel_shows_two_more_in_progress_polls_then_cancelled(sim, http, clock, alias):
    run_id = start(http).json()["id"]
    clock.now += 5
    running = get_run(http, run_id).json()
    assert running["status"] == "in_progress"

    ack = cancel(http, run_id, alias=alias)
    assert ack.status_code == 200
    assert ack.json() == {"response_id": run_id, "status": "cancelling"}
    assert_shaped_like(ack.json(), "cancel_ack")
    assert ack.headers["x-request-id"] == run_id.removeprefix("resp_")
    # Asking the Python API does not use up the polls.
    assert sim.run_status(run_id) == sim.run_status(run_id) == "in_progress"
    # A second cancel while it is still winding down is accepted again.
    assert cancel(http, run_id).json()["status"] == "cancelling"

    for _ in range(2):
        polled = get_run(http, run_id).json()
        assert polled["status"] == "in_progress"
        assert polled["output"] == running["output"]
    cancelled = get_run(http, run_id).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"] == {"code": "cancelled", "message": "cancelled", "type": "cancelled"}
    assert cancelled["incomplete_details"] == {"reason": "cancelled"}
    assert cancelled["usage"] is None and cancelled["completed_at"] is None
    assert cancelled["model"] == "medium"
    assert cancelled["output"] == running["output"] != []
    assert_shaped_like(cancelled, "get_cancelled")
    # For good, even after the run would have finished.
    clock.now += 3600
    assert get_run(http, run_id).json() == cancelled
    assert sim.run_status(run_id) == "cancelled"
    again = cancel(http, run_id)
    assert (again.status_code, again.json()) == (400, CANCEL_TERMINAL)
    assert sim.calls.count(endpoint="cancel", job_id=run_id) == 3


def test_a_run_cancelled_while_queued_has_no_output(sim, http):
    run_id = start(http).json()["id"]
    assert cancel(http, run_id).status_code == 200
    assert get_run(http, run_id).json()["output"] == []
    assert get_run(http, run_id).json()["status"] == "in_progress"
    cancelled = get_run(http, run_id).json()
    assert (cancelled["status"], cancelled["output"]) == ("cancelled", [])


@pytest.mark.parametrize("outcome", ["completed", "failed", "incomplete"])
def test_cancelling_a_finished_run_is_400(sim, http, clock, outcome):
    run_id = sim.add_run(KEY, outcome=outcome, words=100, sources=2)
    clock.now += 30
    response = cancel(http, run_id)
    assert (response.status_code, response.json()) == (400, CANCEL_TERMINAL)
    assert_shaped_like(response.json(), "error_400_cancel_terminal")
    assert sim.run_status(run_id) == outcome


def test_cancel_run_and_its_control_endpoint(sim, http, clock):
    run_id = sim.add_run(KEY)
    sim.cancel_run(run_id)
    assert [get_run(http, run_id).json()["status"] for _ in range(3)] == [
        "in_progress", "in_progress", "cancelled",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="cancelled"):
        sim.cancel_run(run_id)
    with pytest.raises(KeyError):
        sim.cancel_run(UNKNOWN_ID)
    other = http.post("/_sim/runs", json={"key": KEY, "question": "Why is the sky blue?"})
    other_id = other.json()["id"]
    assert http.post("/_sim/runs/cancel", json={"id": other_id}).json() == {"ok": True}
    assert sim.run_status(other_id) == "in_progress"
    assert http.post("/_sim/runs/cancel", json={"id": UNKNOWN_ID}).status_code == 400


# -- models, routing, envelopes, rate limits -----------------------------------------------------


def test_models_need_a_key_and_list_pricing(sim, http):
    for headers in ({"Authorization": ""}, bearer("pplx-unknown-key-99")):
        response = http.get("/v1/models", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "invalid_api_key"
        assert response.json()["error"]["code"] == 401
    listed = http.get("/v1/models")
    assert listed.status_code == 200
    document = listed.json()
    assert document["object"] == "list"
    ids = [model["id"] for model in document["data"]]
    assert {"perplexity/sonar", "openai/gpt-6-luna", "openai/gpt-6-sol"} <= set(ids)
    assert "anthropic/claude-opus-5-5" in ids
    assert not any("deep-research" in i or i in ("sonar", "sonar-pro") for i in ids)
    sonar = next(m for m in document["data"] if m["id"] == "perplexity/sonar")
    assert sonar["object"] == "model" and sonar["owned_by"] == "perplexity"
    assert sonar["pricing"]["input"] == 0.25 and sonar["pricing"]["output"] == 2.5
    assert [c.endpoint for c in sim.calls.all()] == ["models"] * 3


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/v1/agent", 405, "method_not_allowed"),
        ("DELETE", f"/v1/agent/{UNKNOWN_ID}", 405, "method_not_allowed"),
        ("GET", f"/v1/responses/{UNKNOWN_ID}/cancel", 405, "method_not_allowed"),
        ("POST", "/v1/models", 405, "method_not_allowed"),
        ("GET", f"/v1/agent/{UNKNOWN_ID}/files", 404, "not_found"),
        ("GET", "/v1/responses/a/b/c", 404, "not_found"),
    ],
)
def test_agent_routing_errors_use_the_agent_envelope(http, method, path, status, kind):
    response = http.request(method, path)
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind
    assert response.json()["error"]["code"] == status
    assert "x-ratelimit-limit" in response.headers


def test_bad_keys_get_401_in_the_agent_envelope_everywhere(sim, http):
    run_id = sim.add_run(KEY)
    sim.revoke_key(KEY)
    for method, path in (
        ("POST", "/v1/agent"),
        ("GET", f"/v1/agent/{run_id}"),
        ("POST", f"/v1/responses/{run_id}/cancel"),
        ("GET", "/v1/models"),
    ):
        response = http.request(method, path, json={"preset": "fast", "input": "x"})
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "message": "Invalid API key provided. Ensure your API key is correct and active.",
                "type": "invalid_api_key",
                "code": 401,
            }
        }
    assert sim.run_status(run_id) == "queued" and len(sim._runs) == 1


def test_every_agent_answer_carries_rate_limit_headers(sim, http, clock):
    run_id = sim.add_run(KEY)
    answers = [
        start(http),
        get_run(http, run_id),
        cancel(http, run_id),
        http.get("/v1/models"),
        get_run(http, "nonsense"),
        http.get("/v1/models", headers=bearer(OTHER_KEY)),
    ]
    for used, response in enumerate(answers[:5], start=1):
        headers = response.headers
        assert headers["x-ratelimit-limit"] == "100000"
        assert headers["x-ratelimit-used"] == str(used)
        assert headers["x-ratelimit-remaining"] == str(100000 - used)
        assert headers["x-ratelimit-reset"] == str(int(START) + 60)
        assert uuid.UUID(headers["x-request-id"])
        assert "Retry-After" not in headers
    assert answers[1].headers["x-request-id"] == run_id.removeprefix("resp_")
    assert answers[5].headers["x-ratelimit-used"] == "1"  # per key


def test_the_rate_limit_answers_429_until_the_minute_has_passed(clock):
    sim = Simulator([KEY, OTHER_KEY], clock=clock, rate_limit_per_minute=3)
    run_id = sim.add_run(KEY)
    with serve(sim) as running, httpx.Client(base_url=running.url, headers=bearer()) as http:
        assert get_run(http, run_id).headers["x-ratelimit-remaining"] == "2"
        clock.now += 10
        assert http.get("/v1/models").headers["x-ratelimit-limit"] == "3"
        assert start(http).headers["x-ratelimit-remaining"] == "0"
        limited = get_run(http, run_id)
        assert limited.status_code == 429
        assert limited.json()["error"]["type"] == "request_rate_limit_exceeded"
        assert limited.json()["error"]["code"] == 429
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert limited.headers["x-ratelimit-reset"] == str(int(START) + 60)
        assert "Retry-After" not in limited.headers
        assert http.get("/v1/models", headers=bearer(OTHER_KEY)).status_code == 200
        clock.now += 50
        assert get_run(http, run_id).status_code == 200  # the first call has left the window
        assert get_run(http, run_id).status_code == 429
        assert sim.calls.count(status=429) == 2
        # Sonar paths are not counted.
        assert http.get("/v1/async/sonar").status_code == 403


# -- faults --------------------------------------------------------------------------------------


def call(http: httpx.Client, endpoint: str, run_id: str, **kwargs: Any) -> httpx.Response:
    if endpoint == "start":
        return http.post("/v1/agent", json={"preset": "fast", "input": "x"}, **kwargs)
    if endpoint == "run":
        return http.get(f"/v1/agent/{run_id}", **kwargs)
    if endpoint == "cancel":
        return http.post(f"/v1/agent/{run_id}/cancel", **kwargs)
    return http.get("/v1/models", **kwargs)


ENDPOINTS = ["start", "run", "cancel", "models"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_replacing_faults_on_agent_endpoints_use_the_agent_envelope(sim, http, endpoint):
    run_id = sim.add_run(KEY)
    sim.inject("rate_limit", endpoint=endpoint, retry_after=7)
    sim.inject("server_error", endpoint=endpoint)
    sim.inject("not_found", endpoint=endpoint)
    limited = call(http, endpoint, run_id)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert limited.json()["error"] == {
        "message": "Rate limit exceeded", "type": "request_rate_limit_exceeded", "code": 429,
    }  # fmt: skip
    broken = call(http, endpoint, run_id)
    assert broken.status_code == 500
    assert broken.json()["error"]["type"] == "internal_error"
    assert broken.json()["error"]["code"] == 500
    missing = call(http, endpoint, run_id)
    assert (missing.status_code, missing.json()) == (404, ERROR_404)
    assert call(http, endpoint, run_id).status_code == 200
    assert [c.endpoint for c in sim.calls.all()] == [endpoint] * 4
    assert all("x-ratelimit-limit" in r.headers for r in (limited, broken, missing))
    # A faulted create created nothing.
    assert len(sim._runs) == (2 if endpoint == "start" else 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hostile_bodies_on_agent_endpoints(sim, http, endpoint):
    run_id = sim.add_run(KEY)
    sim.inject("not_json", endpoint=endpoint)
    sim.inject("not_a_job", endpoint=endpoint)
    sim.inject("garbage", endpoint=endpoint)
    sim.inject("oversize", endpoint=endpoint, size=200_000)
    sim.inject("gzip_bomb", endpoint=endpoint, size=100_000)
    html = call(http, endpoint, run_id)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert call(http, endpoint, run_id).json() == {"hello": 1}
    garbage = call(http, endpoint, run_id)
    assert garbage.content == faults.GARBAGE
    with pytest.raises(UnicodeDecodeError):
        garbage.content.decode("utf-8")
    big = call(http, endpoint, run_id)
    assert int(big.headers["content-length"]) == len(big.content) == 200_000
    assert big.json()["status"] == "completed"
    with http.stream(
        "GET" if endpoint in ("run", "models") else "POST", call_path(endpoint, run_id)
    ) as bomb:
        assert bomb.headers["content-encoding"] == "gzip"
        inflated = gzip.decompress(b"".join(bomb.iter_raw()))
        assert len(inflated) > 100_000 and inflated.startswith(b'{"id": "bomb"')
    assert call(http, endpoint, run_id).status_code == 200


def call_path(endpoint: str, run_id: str) -> str:
    return {
        "start": "/v1/agent",
        "run": f"/v1/agent/{run_id}",
        "cancel": f"/v1/agent/{run_id}/cancel",
        "models": "/v1/models",
    }[endpoint]


def test_text_faults_alter_agent_responses(sim, http, clock):
    run_id = sim.add_run(KEY, queue_seconds=0, run_seconds=0, words=200, sources=4)
    plain = get_run(http, run_id).json()

    sim.inject("unstorable_text", endpoint="run", job_id=run_id)
    raw = get_run(http, run_id).text
    assert "\\u0000" in raw and "\\ud800" in raw
    altered = json.loads(raw)
    assert altered["model"] == plain["model"] + "\x00"
    assert text_of(altered).startswith("NUL here:\x00")
    assert all(r["title"].endswith("\x00") for i in altered["output"] for r in i.get("results", []))

    sim.inject("long_model", endpoint="run")
    assert get_run(http, run_id).json()["model"] == faults.LONG_MODEL

    sim.inject("wrong_charset", endpoint="run")
    latin = get_run(http, run_id)
    assert latin.headers["content-type"] == "application/json; charset=iso-8859-1"
    assert json.loads(latin.content.decode("utf-8"))["output"][-1]["content"][0]["text"].startswith(
        faults.NON_ASCII
    )

    sim.inject("long_model", endpoint="models")
    assert http.get("/v1/models").json()["data"][0]["id"] == faults.LONG_MODEL
    sim.inject("unstorable_text", endpoint="cancel")
    assert get_run(http, run_id).json() == plain


def test_slow_and_drip_faults_on_agent_endpoints(sim, http):
    run_id = sim.add_run(KEY)
    sim.inject("slow", endpoint="run", delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"/v1/agent/{run_id}", timeout=0.3)
    sim.inject("drip", endpoint="cancel", delay=0.005)
    started = time.monotonic()
    dripped = cancel(http, run_id)
    assert dripped.json() == {"response_id": run_id, "status": "cancelling"}
    assert time.monotonic() - started > 0.2
    assert get_run(http, run_id).status_code == 200


def test_a_fault_for_one_run_leaves_the_others_alone(sim, http):
    first, second = sim.add_run(KEY), sim.add_run(KEY)
    sim.inject("server_error", job_id=second, times=None)
    assert get_run(http, first).status_code == 200
    assert get_run(http, second).status_code == 500
    assert cancel(http, second).status_code == 500
    assert get_run(http, second).status_code == 500
    sim.clear_faults()
    assert get_run(http, second).status_code == 200


def test_faults_through_the_control_endpoint(sim, http):
    run_id = sim.add_run(KEY)
    assert http.post("/_sim/faults", json={"kind": "garbage", "endpoint": "run"}).is_success
    assert get_run(http, run_id).content == faults.GARBAGE
    assert http.post("/_sim/faults", json={"kind": "x", "endpoint": "run"}).status_code == 400


def test_list_instead_of_job_stays_a_sonar_fault(sim):
    for endpoint in ENDPOINTS:
        with pytest.raises(ValueError, match="Sonar"):
            sim.inject("list_instead_of_job", endpoint=endpoint)
    with pytest.raises(ValueError, match="endpoint"):
        sim.inject("server_error", endpoint="poll")


def test_list_instead_of_job_never_fires_on_agent_calls(sim, http):
    run_id = sim.add_run(KEY)
    sim.inject("list_instead_of_job", times=None)
    assert get_run(http, run_id).json()["id"] == run_id


# -- the shapes of the contract's examples -------------------------------------------------------


def test_example_shapes_are_those_of_the_reference_file():
    if not EXAMPLES.exists():
        pytest.skip("the contract's examples are not on this machine")
    examples = json.loads(EXAMPLES.read_text())
    for name, shape in EXAMPLE_SHAPES.items():
        assert structure(examples[name]) == shape, name
    assert examples["sonar_403_retired"] == SONAR_403
    assert examples["error_404"] == ERROR_404
    assert examples["error_400_cancel_terminal"] == CANCEL_TERMINAL
    assert examples["error_400_unknown_field"] == unknown_field("return_images")
    assert examples["create_request"] == EXAMPLE_REQUEST
    queued = set(examples["create_response_queued"])
    assert queued | DOCUMENTED_EXTRAS["response"] == set(RESPONSE_KEYS)


def test_the_simulators_bodies_have_the_examples_shapes(sim, http, clock):
    queued = start(http).json()
    assert_shaped_like(queued, "create_response_queued")
    clock.now += 5
    assert_shaped_like(get_run(http, queued["id"]).json(), "get_in_progress")
    ack = cancel(http, queued["id"]).json()
    assert_shaped_like(ack, "cancel_ack")
    for _ in range(3):
        cancelled = get_run(http, queued["id"]).json()
    assert_shaped_like(cancelled, "get_cancelled")
    shapes = {
        "get_completed": sim.add_run(KEY),
        "get_incomplete": sim.add_run(KEY, outcome="incomplete"),
        "get_failed_http_200": sim.add_run(KEY, outcome="failed"),
    }
    clock.now += 60
    for example, run_id in shapes.items():
        assert_shaped_like(get_run(http, run_id).json(), example)
    assert_shaped_like(start(http, foo=1).json(), "error_400_unknown_field")
    assert_shaped_like(get_run(http, UNKNOWN_ID).json(), "error_404")
    assert_shaped_like(cancel(http, shapes["get_completed"]).json(), "error_400_cancel_terminal")
    assert_shaped_like(http.get("/v1/async/sonar").json(), "sonar_403_retired")


# -- the generated answers -----------------------------------------------------------------------


def completed(sim: Simulator, http: httpx.Client, clock: FakeClock, **kwargs: Any) -> dict:
    run_id = sim.add_run(KEY, queue_seconds=0, run_seconds=0, **kwargs)
    return get_run(http, run_id).json()


def test_answers_cite_search_results_by_id(sim, http, clock):
    document = completed(sim, http, clock, question=QUESTION, words=1500, sources=20)
    kinds = [item["type"] for item in document["output"]]
    assert kinds[-2:] == ["fetch_url_results", "message"]
    assert set(kinds[:-2]) == {"search_results"} and len(kinds) >= 3
    ids = result_ids(document)
    assert len(ids) == 20 == len(set(ids)) and all(isinstance(i, int) for i in ids)
    assert ids[0] in (1, 11) and ids == sorted(ids)
    for item in document["output"][:-2]:
        assert item["queries"] and all(isinstance(q, str) and q for q in item["queries"])
        for result in item["results"]:
            assert {"id", "url", "title", "snippet", "source"} <= set(result)
            assert result["source"] == "web" and result["url"].startswith("https://")
            assert urls_are_reserved([result["url"]])
    fetched = document["output"][-2]["contents"]
    searched = {r["url"] for i in document["output"][:-2] for r in i["results"]}
    assert any(c["url"] in searched for c in fetched)
    assert any(c["url"] not in searched for c in fetched)
    assert all(len(c["snippet"].split()) > 30 and c["title"] for c in fetched)

    message = document["output"][-1]
    assert re.fullmatch(r"msg_[0-9a-f-]{36}", message["id"]) and uuid.UUID(message["id"][4:])
    assert (message["role"], message["status"]) == ("assistant", "completed")
    assert message["content"] == [
        {"type": "output_text", "text": message["content"][0]["text"], "annotations": []}
    ]
    text = text_of(document)
    assert text.startswith("# ") and "\n## " in text
    assert "heat pumps" in text.lower()
    markers = MARKER.findall(text)
    assert any(web for web, _ in markers) and any(not web for web, _ in markers)
    cited = {int(n) for _, n in markers}
    # Every result is cited; exactly one marker names no result (the app keeps it as text).
    assert set(ids) <= cited and len(cited - set(ids)) == 1
    stray = (cited - set(ids)).pop()
    assert len(re.findall(rf"\[(?:web:)?{stray}\]", text)) == 1
    serialised = json.dumps(document)
    assert "images" not in serialised and "related_questions" not in serialised


def urls_are_reserved(urls: list[str]) -> bool:
    return all(re.match(r"https://[^/]+\.example\.(org|com|net)/", u) for u in urls)


def test_usage_adds_up(sim, http, clock):
    document = completed(sim, http, clock, preset="high", words=800, sources=12)
    usage = document["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_tokens"] > usage["output_tokens_details"]["reasoning_tokens"] > 0
    details = usage["input_tokens_details"]
    assert details["cached_tokens"] == details["cache_read_input_tokens"] > 0
    tools = usage["tool_calls_details"]
    queries = sum(len(i["queries"]) for i in document["output"] if i["type"] == "search_results")
    assert tools["search_web"]["invocation"] == queries
    fetched = document["output"][-2]["contents"]
    assert (
        tools["fetch_url"]["invocation"] == len(fetched) == len(tools["fetch_url"]["token_usage"])
    )
    cost = usage["cost"]
    assert cost["currency"] == "USD"
    assert cost["tool_calls_cost_details"] == {
        "search_web": tools["search_web"]["cost_usd"],
        "fetch_url": tools["fetch_url"]["cost_usd"],
    }
    assert cost["tool_calls_cost"] == round(sum(cost["tool_calls_cost_details"].values()), 5)
    parts = ("input_cost", "output_cost", "cache_creation_cost", "cache_read_cost",
             "tool_calls_cost")  # fmt: skip
    assert cost["total_cost"] == round(sum(cost.get(p, 0) for p in parts), 5) > 0


def test_usage_leaves_out_zero_keys(sim, http, clock):
    # perplexity/sonar has no cache write price; with no tools nothing is billed for them.
    document = completed(sim, http, clock, preset=None, model="perplexity/sonar", sources=0)
    usage = document["usage"]
    assert "cache_creation_input_tokens" not in usage["input_tokens_details"]
    assert "cache_creation_cost" not in usage["cost"]
    assert "tool_calls_cost" not in usage["cost"]
    assert "tool_calls_cost_details" not in usage["cost"]
    assert "search_web" not in usage.get("tool_calls_details", {})
    assert {"input_cost", "output_cost", "total_cost", "currency"} <= set(usage["cost"])


def test_answers_are_deterministic_per_run_id():
    first = generate_answer(QUESTION, seed="resp_a", model="openai/gpt-6-luna")
    again = generate_answer(QUESTION, seed="resp_a", model="openai/gpt-6-luna")
    other = generate_answer(QUESTION, seed="resp_b", model="openai/gpt-6-luna")
    assert first.output() == again.output() and first.usage() == again.usage()
    assert first.text != other.text
    starts = {
        generate_answer(QUESTION, seed=f"resp_{n}", model="x", words=100, sources=4).result_ids[0]
        for n in range(12)
    }
    assert starts == {1, 11}


def test_the_same_run_answers_the_same_in_two_simulators(clock):
    fixed = "resp_3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e11"
    documents = []
    for _ in range(2):
        sim = Simulator([KEY], clock=clock)
        sim.add_run(KEY, run_id=fixed, created_at=START - 100, queue_seconds=1, run_seconds=1)
        with serve(sim) as running, httpx.Client(base_url=running.url, headers=bearer()) as http:
            documents.append(get_run(http, fixed).json())
    assert documents[0] == documents[1]


def test_answers_scale_to_forty_thousand_words_and_150_sources_quickly():
    started = time.process_time()
    answer = generate_answer(QUESTION, seed="big", model="openai/gpt-6-luna", words=40000,
                             sources=150)  # fmt: skip
    output, usage = answer.output(), answer.usage()
    json.dumps({"output": output, "usage": usage})
    assert time.process_time() - started < 1.5
    assert 38000 <= len(answer.text.split()) <= 44000
    ids = answer.result_ids
    assert len(ids) == len(set(ids)) == 150
    cited = {int(n) for _, n in MARKER.findall(answer.text)}
    assert set(ids) <= cited and len(cited - set(ids)) == 1


def test_a_big_answer_is_generated_once_and_cached(sim, http, clock):
    run_id = sim.add_run(KEY, queue_seconds=0, run_seconds=0, words=40000, sources=150)
    assert sim._runs[run_id].answer is None  # nothing until read
    first = get_run(http, run_id)
    answer = sim._runs[run_id].answer
    assert answer is not None and len(result_ids(first.json())) == 150
    assert get_run(http, run_id).content == first.content
    assert sim._runs[run_id].answer is answer


# -- control and demo ----------------------------------------------------------------------------


def test_control_endpoint_adds_runs(sim, http, clock):
    created = http.post(
        "/_sim/runs",
        json={"key": KEY, "question": "Why do bridges sway?", "preset": "fast", "run_seconds": 5},
    )
    run_id = created.json()["id"]
    assert RUN_ID.match(run_id)
    http.post("/_sim/advance", json={"seconds": 10})
    document = get_run(http, run_id).json()
    assert document["status"] == "completed" and "bridges" in text_of(document).lower()
    for body in ({"question": "no key"}, {"key": KEY, "outcome": "EXPLODED"}, {"key": KEY, "x": 1}):
        response = http.post("/_sim/runs", json=body)
        assert response.status_code == 400 and "detail" in response.json()


def test_demo_runs(clock):
    sim = Simulator(clock=clock)
    tracked = seed_demo_runs(sim)
    assert tracked == list(DEMO_AGENT_TRACKED)
    assert [run.id for run in tracked] == list(DEMO_AGENT_RUN_IDS)
    assert [run.preset for run in tracked] == ["medium", "high", "medium"]
    with (
        serve(sim) as running,
        httpx.Client(base_url=running.url, headers=bearer(DEMO_KEY)) as http,
    ):
        done = get_run(http, DEMO_AGENT_COMPLETED_ID).json()
        assert done["status"] == "completed" and done["model"] == "openai/gpt-6-luna"
        assert 2700 <= len(text_of(done).split()) <= 3500 and len(result_ids(done)) == 24
        assert 15 * 60 <= START - done["created_at"] <= 25 * 60

        failed = get_run(http, DEMO_AGENT_FAILED_ID).json()
        assert (failed["status"], failed["error"]["message"]) == (
            "failed",
            RUN_FAILED_ERROR_MESSAGE,
        )

        assert get_run(http, DEMO_AGENT_RUNNING_ID).json()["status"] == "in_progress"
        clock.now += 59
        assert get_run(http, DEMO_AGENT_RUNNING_ID).json()["status"] == "in_progress"
        clock.now += 2
        finished = get_run(http, DEMO_AGENT_RUNNING_ID).json()
        assert (finished["status"], finished["model"]) == ("completed", "openai/gpt-6-sol")
        # The demo key reads the retired Sonar API like anyone else.
        assert http.get("/v1/async/sonar").status_code == 403


def test_sonar_archive_samples():
    samples = sonar_archive_samples()
    assert [(job_id, question) for job_id, question, _ in samples] == [
        (job.id, job.question) for job in DEMO_SONAR_ARCHIVED
    ]
    retirement = 1_790_467_200  # 2026-09-27T00:00:00Z
    for (job_id, _, raw), job in zip(samples, DEMO_SONAR_ARCHIVED, strict=True):
        document = json.loads(raw)
        assert document["id"] == job_id and document["status"] == "COMPLETED"
        assert document["model"] == job.model
        assert document["created_at"] < document["completed_at"] < retirement
        assert document["failed_at"] is None and document["error_message"] is None
        response = document["response"]
        assert response["choices"][0]["message"]["content"]
        assert response["search_results"] and response["citations"]
        assert response["images"] and response["related_questions"]
        assert all(i["image_url"].startswith("http://127.0.0.1:8001/_sim/images/")
                   for i in response["images"])  # fmt: skip
    assert sonar_archive_samples() == samples
    plain = sonar_archive_samples(image_base=None)
    assert json.loads(plain[0][2])["response"]["images"][0]["image_url"].startswith(
        "https://images.example.org/"
    )
