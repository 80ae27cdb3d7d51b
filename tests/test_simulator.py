"""The Sonar API simulator, spoken to over real HTTP on a real socket."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from sonarweb.simulator.app import Simulator
from sonarweb.simulator.demo import (
    DEMO_COMPLETED_ID,
    DEMO_FAILED_ID,
    DEMO_JOB_IDS,
    DEMO_KEY,
    DEMO_RUNNING_ID,
    DEMO_TRACKED,
    DEMO_UNTRACKED_JOB_IDS,
    FAILED_ERROR_MESSAGE,
    seed_demo_jobs,
)
from sonarweb.simulator.server import RunningServer, serve

KEY = "pplx-simtest-aaaa1111"
OTHER_KEY = "pplx-simtest-bbbb2222"
START = 1_760_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_body(question: str = "How do heat pumps perform in cold climates?", **options: Any):
    request = {"model": "sonar-deep-research", "messages": [{"role": "user", "content": question}]}
    request.update(options)
    return {"request": request}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(
        [KEY, OTHER_KEY], clock=clock, queue_seconds=2, run_seconds=20, sonar_retired=False
    )


@pytest.fixture
def start_server() -> Iterator[Callable[[Simulator], RunningServer]]:
    servers: list[RunningServer] = []

    def start(app: Simulator) -> RunningServer:
        servers.append(serve(app))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(sim: Simulator, start_server) -> RunningServer:
    return start_server(sim)


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def get_job(http: httpx.Client, job_id: str, key: str = KEY) -> httpx.Response:
    return http.get(f"/v1/async/sonar/{job_id}", headers=bearer(key))


# -- server ------------------------------------------------------------------------------------


def test_server_picks_a_free_port_and_stops(sim):
    with serve(sim) as first, serve(sim) as second:
        assert first.port != second.port > 0
        assert first.url == f"http://127.0.0.1:{first.port}"
        assert httpx.get(first.url + "/_sim/health").json()["ok"] is True
    with pytest.raises(httpx.ConnectError):
        httpx.get(first.url + "/_sim/health", timeout=1)
    first.stop()  # a second stop is harmless


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/async/sonar"), ("POST", "/v1/async/sonar"), ("GET", "/v1/async/sonar/x")],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer pplx-not-a-known-key"}, {"Authorization": f"Basic {KEY}"}],
)
def test_every_endpoint_needs_a_known_bearer_key(http, method, path, headers):
    response = http.request(method, path, headers=headers, json=create_body())
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)


def test_without_a_key_list_any_well_formed_pplx_key_is_accepted(start_server):
    server = start_server(Simulator(sonar_retired=False))
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/v1/async/sonar", headers=bearer("pplx-anything_123")).status_code == 200
        assert http.get("/v1/async/sonar", headers=bearer("pplx-short")).status_code == 401
        assert http.get("/v1/async/sonar", headers=bearer("sk-0123456789abcdef")).status_code == 401


def test_revoked_key_gets_401_everywhere_until_added_again(sim, http):
    job_id = sim.add_job(KEY)
    sim.revoke_key(KEY)
    assert get_job(http, job_id).status_code == 401
    assert http.get("/v1/async/sonar", headers=bearer()).status_code == 401
    assert http.post("/v1/async/sonar", headers=bearer(), json=create_body()).status_code == 401
    assert http.get("/v1/async/sonar", headers=bearer(OTHER_KEY)).status_code == 200
    sim.add_key(KEY)
    assert get_job(http, job_id).status_code == 200


# -- create ------------------------------------------------------------------------------------


def test_create_answers_a_created_job_that_can_then_be_fetched(http):
    response = http.post("/v1/async/sonar", headers=bearer(), json=create_body())
    assert response.status_code == 200
    job = response.json()
    assert uuid.UUID(job["id"]).version == 4
    assert job["status"] == "CREATED"
    assert job["model"] == "sonar-deep-research"
    assert job["created_at"] == int(START)
    assert job["started_at"] is job["completed_at"] is job["failed_at"] is None
    assert job["response"] is None
    fetched = get_job(http, job["id"]).json()
    assert fetched["id"] == job["id"] and fetched["status"] == "CREATED"


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({}, ["body", "request"], "missing"),
        ({"request": "x"}, ["body", "request"], "model_attributes_type"),
        ({"request": {"messages": []}}, ["body", "request", "model"], "missing"),
        ({"request": {"model": "sonar"}}, ["body", "request", "messages"], "missing"),
        (create_body(model="gpt-4o"), ["body", "request", "model"], "enum"),
        (create_body(search_mode="news"), ["body", "request", "search_mode"], "enum"),
        (
            create_body(search_recency_filter="decade"),
            ["body", "request", "search_recency_filter"],
            "enum",
        ),
        (create_body(reasoning_effort="max"), ["body", "request", "reasoning_effort"], "enum"),
        (create_body(return_images="yes"), ["body", "request", "return_images"], "bool_type"),
        (create_body(temperature=3), ["body", "request", "temperature"], "less_than_equal"),
        (
            {"request": {"model": "sonar", "messages": [{"content": "hi"}]}},
            ["body", "request", "messages", 0, "role"],
            "missing",
        ),
        (
            create_body(web_search_options={"search_context_size": "huge"}),
            ["body", "request", "web_search_options", "search_context_size"],
            "enum",
        ),
    ],
)
def test_invalid_create_bodies_are_422_validation_errors(http, body, loc, kind):
    response = http.post("/v1/async/sonar", headers=bearer(), json=body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {"loc": loc, "type": kind} in [{"loc": e["loc"], "type": e["type"]} for e in errors]
    assert all(isinstance(e["msg"], str) and e["msg"] for e in errors)
    assert http.get("/v1/async/sonar", headers=bearer()).json()["requests"] == []


def test_body_that_is_not_json_is_a_422(http):
    response = http.post(
        "/v1/async/sonar", headers={**bearer(), "Content-Type": "application/json"}, content="{"
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_valid_model_and_options_are_accepted(http):
    for model in ("sonar", "sonar-pro", "sonar-deep-research", "sonar-reasoning-pro"):
        body = create_body(
            model=model,
            search_mode="academic",
            search_recency_filter="week",
            reasoning_effort="high",
            web_search_options={"search_context_size": "high"},
        )
        assert http.post("/v1/async/sonar", headers=bearer(), json=body).status_code == 200


def test_same_idempotency_key_returns_the_same_job(http):
    body = create_body() | {"idempotency_key": "retry-me-7"}
    first = http.post("/v1/async/sonar", headers=bearer(), json=body).json()
    second = http.post("/v1/async/sonar", headers=bearer(), json=body).json()
    assert first["id"] == second["id"]
    other_key = http.post("/v1/async/sonar", headers=bearer(OTHER_KEY), json=body).json()
    assert other_key["id"] != first["id"]
    fresh = http.post("/v1/async/sonar", headers=bearer(), json=create_body()).json()
    assert fresh["id"] != first["id"]
    listed = http.get("/v1/async/sonar", headers=bearer()).json()["requests"]
    assert sorted(j["id"] for j in listed) == sorted([first["id"], fresh["id"]])


def test_create_rate_limit_answers_429_with_retry_after(clock, start_server):
    sim = Simulator([KEY, OTHER_KEY], clock=clock, create_limit_per_minute=2, sonar_retired=False)
    server = start_server(sim)
    with httpx.Client(base_url=server.url) as http:
        assert http.post("/v1/async/sonar", headers=bearer(), json=create_body()).status_code == 200
        clock.now += 15
        assert http.post("/v1/async/sonar", headers=bearer(), json=create_body()).status_code == 200
        limited = http.post("/v1/async/sonar", headers=bearer(), json=create_body())
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "45"
        assert "Rate limit" in limited.json()["detail"]
        # Per key: another key is not affected, and GETs are not limited.
        assert (
            http.post("/v1/async/sonar", headers=bearer(OTHER_KEY), json=create_body()).status_code
            == 200
        )
        assert http.get("/v1/async/sonar", headers=bearer()).status_code == 200
        clock.now += 46
        assert http.post("/v1/async/sonar", headers=bearer(), json=create_body()).status_code == 200
        assert len(http.get("/v1/async/sonar", headers=bearer()).json()["requests"]) == 3


def test_created_job_answers_the_question_asked(sim, http, clock):
    body = create_body(
        "What are the health effects of microplastics in drinking water?",
        model="sonar-pro",
        return_images=False,
        return_related_questions=False,
    )
    job_id = http.post("/v1/async/sonar", headers=bearer(), json=body).json()["id"]
    clock.now += 30
    job = get_job(http, job_id).json()
    assert job["status"] == "COMPLETED"
    response = job["response"]
    assert response["model"] == "sonar-pro"
    assert "microplastics" in response["choices"][0]["message"]["content"].lower()
    assert "images" not in response and "related_questions" not in response


# -- list --------------------------------------------------------------------------------------


def test_list_is_newest_first_paginated_and_per_key(clock, start_server):
    sim = Simulator([KEY, OTHER_KEY], clock=clock, page_size=3, sonar_retired=False)
    ids = []
    for index in range(7):
        ids.append(sim.add_job(KEY, created_at=START - 100 + index))
    other = sim.add_job(OTHER_KEY)
    server = start_server(sim)
    seen: list[str] = []
    token = None
    pages = 0
    with httpx.Client(base_url=server.url) as http:
        while True:
            params = {"next_token": token} if token else {}
            page = http.get("/v1/async/sonar", headers=bearer(), params=params).json()
            pages += 1
            assert len(page["requests"]) <= 3
            seen += [job["id"] for job in page["requests"]]
            if pages == 1:
                # A job created between pages must not shift the following pages.
                sim.add_job(KEY, created_at=START)
            token = page["next_token"]
            if token is None:
                break
        summary = http.get("/v1/async/sonar", headers=bearer()).json()["requests"][1]
        bad = http.get("/v1/async/sonar", headers=bearer(), params={"next_token": "garbage!"})
    assert pages == 3
    assert seen == list(reversed(ids))
    assert other not in seen
    assert set(summary) >= {"id", "model", "status", "created_at", "started_at", "completed_at"}
    assert "response" not in summary
    assert bad.status_code == 422


# -- one job: status over time -----------------------------------------------------------------


def test_status_follows_the_clock(sim, http, clock):
    job_id = sim.add_job(KEY, question="How are tidal power plants maintained?")
    job = get_job(http, job_id).json()
    assert (job["status"], job["started_at"], job["response"]) == ("CREATED", None, None)

    clock.now += 2
    job = get_job(http, job_id).json()
    assert job["status"] == "IN_PROGRESS"
    assert job["started_at"] == int(START + 2)
    assert job["completed_at"] is None and job["response"] is None

    clock.now += 19.5
    assert get_job(http, job_id).json()["status"] == "IN_PROGRESS"

    clock.now += 0.5
    job = get_job(http, job_id).json()
    assert job["status"] == "COMPLETED"
    assert job["completed_at"] == int(START + 22)
    assert job["failed_at"] is None and job["error_message"] is None
    response = job["response"]
    assert response["choices"][0]["message"]["content"].startswith("<think>")
    assert len(response["search_results"]) >= 10
    # The stored answer does not change between reads.
    assert get_job(http, job_id).json()["response"] == response


def test_failed_job_has_error_message_and_no_response(sim, http, clock):
    job_id = sim.add_job(KEY, outcome="FAILED", error_message="Out of research budget.")
    clock.now += 60
    job = get_job(http, job_id).json()
    assert job["status"] == "FAILED"
    assert job["error_message"] == "Out of research budget."
    assert job["failed_at"] == int(START + 22)
    assert job["completed_at"] is None and job["response"] is None


def test_other_keys_job_and_unknown_ids_are_404(sim, http):
    job_id = sim.add_job(OTHER_KEY)
    for path in (job_id, "does-not-exist", str(uuid.uuid4())):
        response = get_job(http, path)
        assert response.status_code == 404
        assert "detail" in response.json()


def test_jobs_expire_after_retention(sim, http):
    job_id = sim.add_job(KEY, created_ago=3600)
    assert get_job(http, job_id).status_code == 200
    sim.advance(7 * 86400 - 3600 - 1)
    assert get_job(http, job_id).status_code == 200
    sim.advance(2)
    assert get_job(http, job_id).status_code == 404
    assert http.get("/v1/async/sonar", headers=bearer()).json()["requests"] == []
    assert sim.job_status(job_id) is None


def test_explicit_completion_is_served_verbatim(sim, http, clock):
    completion = {"id": "c", "model": "sonar", "created": 1, "choices": [], "new_field": [1]}
    job_id = sim.add_job(KEY, completion=completion, queue_seconds=0, run_seconds=0)
    assert get_job(http, job_id).json()["response"] == completion


# -- faults ------------------------------------------------------------------------------------


def test_rate_limit_fault(sim, http):
    job_id = sim.add_job(KEY)
    sim.inject("rate_limit", endpoint="get", retry_after=7)
    response = get_job(http, job_id)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert get_job(http, job_id).status_code == 200


def test_server_error_fault_is_consumed_times_times(sim, http):
    job_id = sim.add_job(KEY)
    sim.inject("server_error", times=2)
    assert get_job(http, job_id).status_code == 500
    assert http.get("/v1/async/sonar", headers=bearer()).status_code == 500
    assert get_job(http, job_id).status_code == 200


def test_not_json_fault(sim, http):
    job_id = sim.add_job(KEY)
    sim.inject("not_json", endpoint="get")
    response = get_job(http, job_id)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_list_instead_of_job_fault(sim, http):
    job_id = sim.add_job(KEY)
    sim.inject("list_instead_of_job")
    # It never fires on the list itself.
    assert http.get("/v1/async/sonar", headers=bearer()).status_code == 200
    document = get_job(http, job_id).json()
    assert "id" not in document
    assert [j["id"] for j in document["requests"]] == [job_id]
    assert get_job(http, job_id).json()["id"] == job_id


def test_not_found_fault_only_for_the_given_job(sim, http):
    first, second = sim.add_job(KEY), sim.add_job(KEY)
    sim.inject("not_found", job_id=second)
    assert get_job(http, first).status_code == 200
    assert get_job(http, second).status_code == 404
    assert get_job(http, second).status_code == 200


def test_slow_fault_trips_a_read_timeout_then_recovers(sim, http):
    job_id = sim.add_job(KEY)
    sim.inject("slow", endpoint="get", delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"/v1/async/sonar/{job_id}", headers=bearer(), timeout=0.3)
    assert get_job(http, job_id).status_code == 200


def test_fault_for_one_endpoint_leaves_the_others_alone(sim, http):
    job_id = sim.add_job(KEY)
    sim.inject("server_error", endpoint="create")
    assert get_job(http, job_id).status_code == 200
    assert http.get("/v1/async/sonar", headers=bearer()).status_code == 200
    assert http.post("/v1/async/sonar", headers=bearer(), json=create_body()).status_code == 500


def test_inject_rejects_unknown_kinds_and_endpoints(sim):
    with pytest.raises(ValueError, match="kind"):
        sim.inject("explode")
    with pytest.raises(ValueError, match="endpoint"):
        sim.inject("slow", endpoint="delete")


# -- calls -------------------------------------------------------------------------------------


def test_calls_are_recorded_without_the_key(sim, http):
    job_id = sim.add_job(KEY)
    get_job(http, job_id)
    get_job(http, "missing")
    http.get("/v1/async/sonar", headers=bearer())
    created = http.post("/v1/async/sonar", headers=bearer(), json=create_body()).json()["id"]
    http.get("/v1/async/sonar")
    calls = sim.calls.all()
    assert [(c.method, c.endpoint, c.job_id, c.status) for c in calls] == [
        ("GET", "get", job_id, 200),
        ("GET", "get", "missing", 404),
        ("GET", "list", None, 200),
        ("POST", "create", created, 200),
        ("GET", "list", None, 401),
    ]
    assert calls[0].path == f"/v1/async/sonar/{job_id}"
    assert calls[0].key_last4 == "1111"
    assert all(KEY not in repr(c) for c in calls)
    assert sim.calls.count(endpoint="get") == 2
    assert sim.calls.count(endpoint="get", job_id=job_id) == 1
    assert sim.calls.count(status=401) == 1
    sim.reset_calls()
    assert len(sim.calls) == 0


def test_concurrent_creates_are_all_kept(sim, server):
    ids: list[str] = []

    def create() -> None:
        with httpx.Client(base_url=server.url) as http:
            for _ in range(5):
                ids.append(
                    http.post("/v1/async/sonar", headers=bearer(), json=create_body()).json()["id"]
                )

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 30
    assert sim.calls.count(endpoint="create", status=200) == 30


# -- routing and control -----------------------------------------------------------------------


def test_unknown_paths_and_wrong_methods(http):
    assert http.get("/v2/other", headers=bearer()).status_code == 404
    assert http.get("/v2/other").json() == {"detail": "Not Found"}
    response = http.delete("/v1/async/sonar", headers=bearer())
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert http.put("/v1/async/sonar/abc", headers=bearer()).status_code == 405
    assert http.post("/_sim/calls").status_code == 405


def test_control_endpoints_drive_the_simulator(sim, http):
    created = http.post(
        "/_sim/jobs",
        json={"key": KEY, "question": "Why do bridges sway?", "model": "sonar", "run_seconds": 5},
    )
    assert created.status_code == 200
    job_id = created.json()["id"]
    assert get_job(http, job_id).json()["status"] == "CREATED"

    advanced = http.post("/_sim/advance", json={"seconds": 10}).json()
    assert advanced["offset"] == 10 and advanced["now"] == START + 10
    job = get_job(http, job_id).json()
    assert job["status"] == "COMPLETED" and job["model"] == "sonar"

    http.post("/_sim/faults", json={"kind": "rate_limit", "endpoint": "get", "retry_after": 3})
    response = get_job(http, job_id)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "3")

    http.post("/_sim/faults", json={"kind": "server_error", "times": 5})
    cleared = http.request("DELETE", "/_sim/faults", json={})
    assert cleared.status_code == 200
    assert get_job(http, job_id).status_code == 200

    calls = http.get("/_sim/calls").json()["calls"]
    assert [c["status"] for c in calls] == [200, 200, 429, 200]
    assert calls[0]["job_id"] == job_id and calls[0]["key_last4"] == "1111"
    assert http.post("/_sim/reset_calls", json={}).status_code == 200
    assert http.get("/_sim/calls").json()["calls"] == []

    assert http.post("/_sim/keys/revoke", json={"key": KEY}).status_code == 200
    assert get_job(http, job_id).status_code == 401
    assert http.post("/_sim/keys/add", json={"key": KEY}).status_code == 200
    assert get_job(http, job_id).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sim/jobs", {"question": "no key"}),
        ("/_sim/jobs", {"key": KEY, "outcome": "EXPLODED"}),
        ("/_sim/jobs", {"key": KEY, "unknown_argument": 1}),
        ("/_sim/faults", {"kind": "meteor"}),
        ("/_sim/advance", {}),
        ("/_sim/advance", [1]),
    ],
)
def test_bad_control_requests_are_400(http, path, body):
    response = http.post(path, json=body)
    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/_sim/jobs", "text/plain"),
        ("POST", "/_sim/keys/revoke", "application/x-www-form-urlencoded"),
        ("POST", "/_sim/reset_calls", None),
        ("DELETE", "/_sim/faults", None),
    ],
)
def test_control_posts_must_be_json(sim, http, method, path, content_type):
    # A web page can send a "simple" cross-origin POST as text/plain without a preflight;
    # application/json needs a preflight, which the simulator never answers.
    body = json.dumps({"key": KEY}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.request(method, path, content=body, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert not sim._jobs and sim.key_accepted(KEY)
    ok = http.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8001", "127.0.0.1.evil.example", "10.0.0.5", ""]
)
def test_control_endpoints_refuse_non_loopback_hosts(sim, http, host):
    # DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
    headers = {"Host": host}
    assert http.get("/_sim/calls", headers=headers).status_code == 403
    assert http.get("/_sim/health", headers=headers).status_code == 403
    response = http.post("/_sim/jobs", json={"key": KEY}, headers=headers)
    assert response.status_code == 403 and not sim._jobs
    # The image endpoint is like a public image host: any Host.
    assert http.get("/_sim/images/chart-40x30.svg", headers=headers).status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8001", "LOCALHOST", "[::1]:9", "[::1]"])
def test_control_endpoints_answer_loopback_hosts(http, host):
    assert http.get("/_sim/health", headers={"Host": host}).status_code == 200


def test_control_endpoints_can_be_switched_off(start_server):
    server = start_server(Simulator(control=False))
    with httpx.Client(base_url=server.url) as http:
        assert http.post("/_sim/jobs", json={"key": KEY}).status_code == 404
        assert http.get("/_sim/calls").status_code == 404


# -- demo --------------------------------------------------------------------------------------


def test_demo_jobs(clock, start_server):
    sim = Simulator(clock=clock, sonar_retired=False)
    tracked = seed_demo_jobs(sim)
    assert [job.id for job in tracked] == list(DEMO_JOB_IDS)
    assert tracked == list(DEMO_TRACKED)
    server = start_server(sim)
    with httpx.Client(base_url=server.url, headers=bearer(DEMO_KEY)) as http:
        listed = http.get("/v1/async/sonar").json()["requests"]
        assert {j["id"] for j in listed} == {*DEMO_JOB_IDS, *DEMO_UNTRACKED_JOB_IDS}
        assert all(j["status"] == "COMPLETED" for j in listed if j["id"] in DEMO_UNTRACKED_JOB_IDS)

        completed = http.get(f"/v1/async/sonar/{DEMO_COMPLETED_ID}").json()
        assert completed["status"] == "COMPLETED"
        assert 15 * 60 <= START - completed["created_at"] <= 25 * 60
        response = completed["response"]
        content = response["choices"][0]["message"]["content"]
        assert 2700 <= len(content.split("</think>")[1].split()) <= 3500
        assert len(response["search_results"]) == 20 and len(response["images"]) == 8

        failed = http.get(f"/v1/async/sonar/{DEMO_FAILED_ID}").json()
        assert (failed["status"], failed["error_message"]) == ("FAILED", FAILED_ERROR_MESSAGE)

        assert http.get(f"/v1/async/sonar/{DEMO_RUNNING_ID}").json()["status"] == "IN_PROGRESS"
        clock.now += 59
        assert http.get(f"/v1/async/sonar/{DEMO_RUNNING_ID}").json()["status"] == "IN_PROGRESS"
        clock.now += 2
        assert http.get(f"/v1/async/sonar/{DEMO_RUNNING_ID}").json()["status"] == "COMPLETED"


# -- manage.py simulate ------------------------------------------------------------------------


def _simulate(tmp_path: Path, *args: str) -> Iterator[tuple[str, list[str]]]:
    """``manage.py simulate --port 0 --demo *args`` running; yields its URL and its output lines
    so far. Terminated afterwards, which must end it cleanly."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "SONARWEB_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "simulate", "--port", "0", "--demo", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    seen: list[str] = []
    try:
        url = None
        while url is None or not seen[-1].startswith("Press Ctrl-C"):
            seen.append(lines.get(timeout=30))
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", seen[-1])
            url = url or (match and match.group(1))
        yield url, seen
    finally:
        process.terminate()
        returncode = process.wait(timeout=60)
    assert returncode == 0


def test_simulate_command_serves_the_demo_runs_with_sonar_retired(tmp_path):
    from sonarweb.simulator.demo import DEMO_AGENT_COMPLETED_ID, sonar_archive_samples

    with contextlib.contextmanager(_simulate)(tmp_path) as (url, output):
        assert any("Sonar API is retired" in line for line in output)
        assert any(DEMO_AGENT_COMPLETED_ID in line for line in output)
        response = httpx.get(
            f"{url}/v1/agent/{DEMO_AGENT_COMPLETED_ID}", headers=bearer(DEMO_KEY), timeout=10
        )
        assert response.status_code == 200
        assert response.json()["status"] == "completed"
        retired = httpx.get(
            f"{url}/v1/async/sonar/{DEMO_COMPLETED_ID}", headers=bearer(DEMO_KEY), timeout=10
        )
        assert retired.status_code == 403
        assert retired.json()["error"]["type"] == "chat_completions_not_available"
        assert httpx.get(f"{url}/v1/models", headers=bearer(KEY)).status_code == 401
        # The archived Sonar answers' pictures are drawn by a simulator at the base they name.
        _, _, raw = sonar_archive_samples(image_base=url)[0]
        image = json.loads(raw)["response"]["images"][0]
        picture = httpx.get(image["image_url"], timeout=10)
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/png"
        drawn = Image.open(io.BytesIO(picture.content))
        assert drawn.size == (image["width"], image["height"])


def test_simulate_command_with_sonar_live_serves_the_sonar_demo(tmp_path):
    with contextlib.contextmanager(_simulate)(tmp_path, "--sonar-live") as (url, output):
        assert any("Sonar API is live" in line for line in output)
        response = httpx.get(
            f"{url}/v1/async/sonar/{DEMO_COMPLETED_ID}", headers=bearer(DEMO_KEY), timeout=10
        )
        assert response.status_code == 200
        assert response.json()["status"] == "COMPLETED"
        assert response.json()["response"]["search_results"]
        # The demo's gallery shows pictures the simulator draws itself.
        images = response.json()["response"]["images"]
        assert images and all(i["image_url"].startswith(f"{url}/_sim/images/") for i in images)
        picture = httpx.get(images[0]["image_url"], timeout=10)
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/png"
        drawn = Image.open(io.BytesIO(picture.content))
        assert drawn.size == (images[0]["width"], images[0]["height"])
        assert httpx.get(f"{url}/v1/async/sonar", headers=bearer(KEY)).status_code == 401
