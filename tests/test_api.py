"""The JSON API under /api/v1/: every operation, scope and error, against the simulator over
real HTTP where upstream is involved; starts with one Idempotency-Key make one run however
many arrive at once."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from sonarweb.accounts.models import AuditAction, AuditEvent
from sonarweb.api import throttling, tokens
from sonarweb.api.models import ApiToken, IdempotencyRecord, Scope
from sonarweb.api.problems import TITLES
from sonarweb.tracker.models import (
    AnswerArchive,
    ApiKey,
    AppState,
    Origin,
    ShareLink,
    TrackedRequest,
)

from .conftest import MEMBER_KEY, OWNER_KEY, archived_request, make_member, poll, wait_for

pytestmark = pytest.mark.django_db

TOKEN_SECRET = "tests-only-api-token-secret-2c7d"
QUESTION = "How do cold-climate heat pumps cope with -25 °C?"


@pytest.fixture(autouse=True)
def _token_secret(settings) -> None:
    settings.SONARWEB_TOKEN_SECRET = TOKEN_SECRET


def make_token(user, scope: str = Scope.WRITE) -> str:
    _, plaintext = tokens.create_token(user, name="tests", scope=scope, expires_at=None)
    return plaintext


@pytest.fixture
def writer(owner) -> str:
    return make_token(owner, Scope.WRITE)


@pytest.fixture
def reader(owner) -> str:
    return make_token(owner, Scope.READ)


@pytest.fixture
def staff(db):
    user = make_member("sofia", MEMBER_KEY)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def call(method: str, path: str, token: str | None, body: Any = None, **headers: str):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    data = json.dumps(body) if body is not None else ""
    return Client().generic(method.upper(), path, data, content_type="application/json", **extra)


def start(token: str, body: dict[str, Any], key: str | None = None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return call("post", "/api/v1/research", token, body, **headers)


def problem(response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    document = response.json()
    assert document["status"] == status
    assert document["type"].endswith(f"/api/v1/docs#problem-{kind}"), document["type"]
    assert document["title"] == TITLES[kind] and document["detail"]
    return document


def starts(simulator) -> int:
    return simulator.calls.count(endpoint="start")


def no_upstream_id(response, *ids: str) -> None:
    """The upstream id (and so the protocol behind the request) is never shown."""
    text = response.content.decode()
    for request_id in ids:
        assert request_id not in text
    assert "resp_" not in text


def running_request(simulator, owner, **run: Any) -> TrackedRequest:
    run_id = simulator.add_run(OWNER_KEY, run_seconds=3600, **run)
    tracked = TrackedRequest.objects.create(
        request_id=run_id,
        added_by=owner,
        origin=Origin.STARTED,
        question="Cold-climate heat pumps",
        model="medium",
        options={"preset": "medium"},
    )
    tracked = poll(tracked)
    assert tracked.status == "IN_PROGRESS"
    return tracked


def finished_request(simulator, owner) -> TrackedRequest:
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(
        request_id=run_id, added_by=owner, question="Geothermal heat in Iceland"
    )
    tracked = poll(tracked)
    assert tracked.has_answer, tracked.status
    return tracked


# -- public description ------------------------------------------------------------------------


def test_the_openapi_document_and_docs_are_public(anon_client):
    response = anon_client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    assert set(paths) == {
        "/api/v1/research",
        "/api/v1/requests",
        "/api/v1/requests/{id}",
        "/api/v1/requests/{id}/answer",
        "/api/v1/requests/{id}/cancel",
        "/api/v1/requests/{id}/share",
    }
    assert set(paths["/api/v1/requests/{id}/share"]) == {"post", "delete"}
    schemes = document["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    research = paths["/api/v1/research"]["post"]
    assert research["x-scope"] == "write"
    header = next(p for p in research["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key" and header["required"] is True
    assert "application/problem+json" in research["responses"]["409"]["content"]
    assert paths["/api/v1/requests"]["get"]["x-scope"] == "read"

    docs = anon_client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    for path in paths:
        assert path in html
    for kind in TITLES:
        assert f'id="problem-{kind}"' in html
    assert "<script" not in html
    assert anon_client.get("/api/v1/").json()["openapi"].endswith("/api/v1/openapi.json")


def test_unknown_addresses_and_anonymous_calls_are_problems(anon_client):
    problem(anon_client.get("/api/v1/nothing/here"), 404, "not-found")
    problem(anon_client.get("/api/v1/requests"), 401, "unauthorized")
    problem(anon_client.get("/api/v1/requests/abc"), 401, "unauthorized")


# -- get one -----------------------------------------------------------------------------------


def test_get_a_running_request(owner, reader, sim_server, simulator):
    tracked = running_request(simulator, owner)
    response = call("get", f"/api/v1/requests/{tracked.slug}", reader)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["id"] == tracked.slug
    assert body["status"] == "IN_PROGRESS" and body["status_label"] == "In progress"
    assert body["finished"] is False and body["has_answer"] is False
    assert body["permalink"] == f"http://testserver/r/{tracked.slug}/"
    assert body["answer_url"] is None
    assert body["title"] == "Cold-climate heat pumps" and body["added_by"] == "olivia"
    assert isinstance(body["poll_after_seconds"], int) and 2 <= body["poll_after_seconds"] <= 300
    no_upstream_id(response, tracked.request_id)


def test_get_a_finished_request(owner, reader, sim_server, simulator):
    tracked = finished_request(simulator, owner)
    TrackedRequest.objects.filter(pk=tracked.pk).update(total_cost=Decimal("0.016250"))
    body = call("get", f"/api/v1/requests/{tracked.slug}", reader).json()
    assert body["status"] == "COMPLETED" and body["finished"] is True
    assert body["poll_after_seconds"] is None and body["cost_usd"] == 0.01625
    assert body["completed_at"] and body["model"]
    assert body["answer_url"] == f"http://testserver/api/v1/requests/{tracked.slug}/answer"


def test_a_pasted_id_is_never_the_title(owner, reader):
    tracked = TrackedRequest.objects.create(request_id="resp_" + str(uuid.uuid4()), added_by=owner)
    response = call("get", f"/api/v1/requests/{tracked.slug}", reader)
    assert response.json()["title"] == "" and response.json()["status"] == "PENDING"
    no_upstream_id(response, tracked.request_id)


def test_an_unknown_request_is_404(reader):
    problem(call("get", "/api/v1/requests/nope", reader), 404, "not-found")


# -- the answer --------------------------------------------------------------------------------


def test_the_answer_with_its_sources_and_sections(owner, reader, sim_server, simulator):
    tracked = finished_request(simulator, owner)
    response = call("get", f"/api/v1/requests/{tracked.slug}/answer", reader)
    assert response.status_code == 200
    body = response.json()
    archive = AnswerArchive.objects.get(pk=tracked.pk)
    assert body["markdown"] == archive.markdown and body["total_length"] == len(archive.markdown)
    assert body["page"] == body["pages"] == 1 and body["next_page"] is None
    assert body["sources"], "the simulator's answers cite sources"
    first = body["sources"][0]
    assert first["number"] == 1 and first["url"].startswith("http") and first["domain"]
    assert set(first) == {"number", "title", "url", "domain"}
    headings = [s["heading"] for s in body["sections"]]
    assert "Sources" in headings
    assert [s["index"] for s in body["sections"]] == list(range(1, len(headings) + 1))
    assert sum(s["length"] for s in body["sections"]) == len(archive.markdown)
    no_upstream_id(response, tracked.request_id)


def long_answer(tracked: TrackedRequest, sections: int = 30, chars: int = 3000) -> str:
    paragraph = ("Heat pumps move heat rather than make it. " * 100)[:chars]
    markdown = "Summary first.\n\n" + "".join(
        f"## Part {n}\n\n{paragraph}\n\n" for n in range(1, sections + 1)
    )
    AnswerArchive.objects.filter(pk=tracked.pk).update(markdown=markdown)
    return markdown


def test_a_long_answer_comes_a_page_or_a_section_at_a_time(owner, reader):
    tracked = archived_request(owner, question="Heat pumps")
    markdown = long_answer(tracked)
    path = f"/api/v1/requests/{tracked.slug}/answer"
    first = call("get", path, reader).json()
    assert len(first["sections"]) == 31 and first["pages"] == 7 and first["page_size"] == 5
    assert first["next_page"] == 2 and first["markdown"].startswith("Summary first.")
    assert len(first["markdown"]) < 20_000
    pieces, page = [first["markdown"]], first["next_page"]
    while page:
        body = call("get", f"{path}?page={page}", reader).json()
        pieces.append(body["markdown"])
        page = body["next_page"]
    assert "".join(pieces) == markdown

    one = call("get", f"{path}?section=7", reader).json()
    assert one["section"] == 7 and one["markdown"].startswith("## Part 6\n")
    assert one["sections"][6]["heading"] == "Part 6" and one["sections"][6]["level"] == 2
    big = call("get", f"{path}?page=2&page_size=10", reader).json()
    assert big["markdown"].startswith("## Part 10\n") and big["pages"] == 4
    problem(call("get", f"{path}?section=32", reader), 422, "invalid-request")
    problem(call("get", f"{path}?page=8", reader), 422, "invalid-request")
    problem(call("get", f"{path}?page_size=500", reader), 422, "invalid-request")


def test_one_huge_section_is_cut_into_parts(owner, reader):
    tracked = archived_request(owner, question="Heat pumps")
    text = "# Report\n\n" + "".join(f"Paragraph {n}. " + "x" * 2000 + "\n\n" for n in range(60))
    AnswerArchive.objects.filter(pk=tracked.pk).update(markdown=text)
    body = call("get", f"/api/v1/requests/{tracked.slug}/answer", reader).json()
    assert len(body["sections"]) > 5
    assert all(s["length"] <= 12_000 for s in body["sections"])
    assert body["sections"][1]["heading"] == "Report (continued)"


def test_no_answer_yet_says_when_to_ask_again(owner, reader, sim_server, simulator):
    tracked = running_request(simulator, owner)
    response = call("get", f"/api/v1/requests/{tracked.slug}/answer", reader)
    document = problem(response, 409, "not-finished")
    assert document["poll_after_seconds"] >= 2
    assert response["Retry-After"] == str(document["poll_after_seconds"])


def test_a_failed_request_has_no_answer(owner, reader):
    tracked = TrackedRequest.objects.create(
        request_id="resp_" + str(uuid.uuid4()), added_by=owner, status="FAILED", next_poll_at=None
    )
    response = call("get", f"/api/v1/requests/{tracked.slug}/answer", reader)
    problem(response, 404, "no-answer")
    no_upstream_id(response, tracked.request_id)


# -- list and search ---------------------------------------------------------------------------


def test_the_list_pages_newest_first_with_a_cursor(owner, member, reader):
    now = timezone.now()
    rows = [
        TrackedRequest.objects.create(
            request_id=f"job-{n:03d}",
            added_by=owner if n % 3 else member,
            question=f"Question {n}",
            created=now - timedelta(minutes=n),
        )
        for n in range(30)
    ]
    # Two rows at the same instant: the id breaks the tie.
    TrackedRequest.objects.filter(pk=rows[5].pk).update(created=rows[4].created)
    expected = list(
        TrackedRequest.objects.order_by("-created", "-id").values_list("slug", flat=True)
    )
    seen: list[str] = []
    cursor = ""
    while True:
        body = call("get", f"/api/v1/requests?limit=7&cursor={cursor}", reader).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == expected

    mine = call("get", "/api/v1/requests?member=mateo&limit=100", reader).json()["items"]
    assert len(mine) == 10 and {i["added_by"] for i in mine} == {"mateo"}
    problem(call("get", "/api/v1/requests?member=nobody", reader), 422, "invalid-request")
    problem(call("get", "/api/v1/requests?cursor=garbage", reader), 422, "invalid-request")
    problem(call("get", "/api/v1/requests?status=BOGUS", reader), 422, "invalid-request")
    problem(call("get", "/api/v1/requests?limit=1000", reader), 422, "invalid-request")


def test_the_list_filters_by_status_and_searches(owner, reader):
    archived_request(owner, request_id="job-geo", question="Geothermal wells in Iceland")
    archived_request(owner, request_id="job-pump", question="Heat pumps in Norway")
    TrackedRequest.objects.create(request_id="job-run", added_by=owner, question="Geothermal maps")
    completed = call("get", "/api/v1/requests?status=completed", reader).json()["items"]
    assert {i["question"] for i in completed} == {
        "Geothermal wells in Iceland",
        "Heat pumps in Norway",
    }
    found = call("get", "/api/v1/requests?q=geothermal", reader).json()["items"]
    assert {i["question"] for i in found} == {"Geothermal wells in Iceland", "Geothermal maps"}
    both = call("get", "/api/v1/requests?q=geothermal&status=COMPLETED", reader).json()["items"]
    assert [i["question"] for i in both] == ["Geothermal wells in Iceland"]
    assert call("get", "/api/v1/requests?q=volcano", reader).json() == {
        "items": [],
        "next_cursor": None,
    }
    response = call("get", "/api/v1/requests?limit=100", reader)
    no_upstream_id(response, "job-geo", "job-pump", "job-run")


# -- start -------------------------------------------------------------------------------------


def test_start_research_and_its_retries(owner, writer, sim_server, simulator):
    body = {
        "question": QUESTION,
        "preset": "fast",
        "filters": {"domains": ["nature.com", "-pinterest.com"], "recency": "month"},
        "max_output_tokens": 4000,
    }
    key = str(uuid.uuid4())
    first = start(writer, body, key)
    assert first.status_code == 201, first.content
    created = first.json()
    tracked = TrackedRequest.objects.get()
    assert created["id"] == tracked.slug and created["status"] in ("CREATED", "IN_PROGRESS")
    assert created["poll_after_seconds"] >= 2 and created["question"] == QUESTION
    assert first["Location"] == f"http://testserver/api/v1/requests/{tracked.slug}"
    no_upstream_id(first, tracked.request_id)
    [sent] = simulator.created_bodies
    assert sent["preset"] == "fast" and sent["background"] is True
    filters = sent["tools"][0]["filters"]
    assert filters["search_domain_filter"] == ["nature.com", "-pinterest.com"]
    assert tracked.origin == Origin.STARTED and tracked.added_by == owner

    again = start(writer, body, key)
    assert again.status_code == 200 and again.json()["id"] == created["id"]
    assert again["Idempotent-Replayed"] == "true"
    # The same body, written differently (defaults spelled out), is the same start.
    spelled = {**body, "preset": "fast", "model": None, "instructions": ""}
    assert start(writer, spelled, key).json()["id"] == created["id"]
    document = problem(
        start(writer, {**body, "question": "Another"}, key), 409, "idempotency-key-reused"
    )
    assert "another body" in document["detail"]
    assert starts(simulator) == 1 and TrackedRequest.objects.count() == 1

    # A new key is a new start; keys are per member.
    assert start(writer, body, str(uuid.uuid4())).status_code == 201
    assert starts(simulator) == 2


def test_the_same_key_of_two_members_is_two_starts(owner, writer, sim_server, simulator):
    other = make_member("priya", MEMBER_KEY)
    key = "shared-key-1"
    one = start(writer, {"question": QUESTION}, key)
    two = start(make_token(other), {"question": QUESTION}, key)
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"] and starts(simulator) == 2


def test_a_start_needs_an_idempotency_key(writer, sim_server, simulator):
    problem(start(writer, {"question": QUESTION}), 400, "idempotency-key-required")
    problem(start(writer, {"question": QUESTION}, "   "), 400, "idempotency-key-required")
    problem(start(writer, {"question": QUESTION}, "k" * 300), 400, "idempotency-key-required")
    assert starts(simulator) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "question"),
        ({"question": "   "}, "question"),
        ({"question": QUESTION, "preset": "ultra"}, "preset"),
        ({"question": QUESTION, "model": "sonar"}, "model"),
        ({"question": QUESTION, "filters": {"domains": ["not a domain"]}}, "filters.domains"),
        (
            {"question": QUESTION, "filters": {"recency": "week", "published_after": "2026-01-01"}},
            "filters.recency",
        ),
        (
            {"question": QUESTION, "filters": {"published_after": "31/31/2026"}},
            "filters.published_after",
        ),
        ({"question": QUESTION, "max_output_tokens": 3}, "max_output_tokens"),
        ({"question": QUESTION, "model": "anthropic/claude-opus-5-5"}, "max_output_tokens"),
        ({"question": QUESTION, "colour": "red"}, "colour"),
    ],
)
def test_an_invalid_body_is_refused_before_anything_is_sent(
    writer, sim_server, simulator, body, field
):
    document = problem(start(writer, body, str(uuid.uuid4())), 422, "invalid-request")
    assert field in [e["field"] for e in document["errors"]], document
    assert starts(simulator) == 0 and IdempotencyRecord.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"question": QUESTION, "api_key": OWNER_KEY},
        {"question": QUESTION, "perplexity_api_key": OWNER_KEY},
        {"question": QUESTION, "filters": {"token": OWNER_KEY}},
    ],
)
def test_the_api_never_takes_a_perplexity_key(writer, sim_server, simulator, body):
    response = start(writer, body, str(uuid.uuid4()))
    problem(response, 422, "key-not-accepted")
    assert OWNER_KEY not in response.content.decode()
    assert starts(simulator) == 0


def test_a_member_without_a_key_starts_nothing(member, sim_server, simulator):
    token = make_token(member)
    key = str(uuid.uuid4())
    problem(start(token, {"question": QUESTION}, key), 422, "no-api-key")
    assert starts(simulator) == 0 and IdempotencyRecord.objects.count() == 0


def test_a_refused_start_frees_its_key(writer, sim_server, simulator):
    simulator.inject("rate_limit", endpoint="start", retry_after=7)
    key = str(uuid.uuid4())
    response = start(writer, {"question": QUESTION}, key)
    document = problem(response, 429, "upstream-rate-limited")
    assert response["Retry-After"] == "7" and document["retry_after"] == 7
    assert TrackedRequest.objects.count() == 0 and IdempotencyRecord.objects.count() == 0
    # Nothing was started, so the same key may go again.
    assert start(writer, {"question": QUESTION}, key).status_code == 201


def test_a_rejected_key_starts_nothing_and_is_marked(owner, writer, sim_server, simulator):
    simulator.revoke_key(OWNER_KEY)
    problem(start(writer, {"question": QUESTION}, str(uuid.uuid4())), 422, "no-api-key")
    assert ApiKey.objects.get(user=owner).is_invalid
    assert TrackedRequest.objects.count() == 0 and IdempotencyRecord.objects.count() == 0


def test_a_start_that_may_have_reached_upstream_is_kept_unconfirmed(writer, sim_server, simulator):
    simulator.inject("server_error", endpoint="start")
    key = str(uuid.uuid4())
    first = start(writer, {"question": QUESTION}, key)
    assert first.status_code == 201 and first.json()["status"] == "UNCONFIRMED"
    assert first.json()["poll_after_seconds"] is None
    again = start(writer, {"question": QUESTION}, key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert starts(simulator) == 1
    tracked = TrackedRequest.objects.get()
    assert tracked.state == AppState.UNCONFIRMED and tracked.next_poll_at is None


def test_a_removed_request_answers_gone_to_its_key(owner, writer, sim_server, simulator):
    key = str(uuid.uuid4())
    assert start(writer, {"question": QUESTION}, key).status_code == 201
    TrackedRequest.objects.all().delete()
    problem(start(writer, {"question": QUESTION}, key), 410, "request-removed")
    assert starts(simulator) == 1


def test_a_start_whose_process_died_is_taken_over(owner, writer, sim_server, simulator):
    """A record left in flight long ago (its process was killed): the key gets the row that
    start reserved, which shows as may-have-started, and nothing is sent again."""
    key = str(uuid.uuid4())
    record = IdempotencyRecord.objects.create(
        user=owner,
        key=key,
        body_hash=_digest_of({"question": QUESTION}),
        form_key=str(uuid.uuid4()),
        created=timezone.now() - timedelta(minutes=5),
    )
    row = TrackedRequest.objects.create(
        request_id=f"starting-{record.form_key}",
        added_by=owner,
        origin=Origin.STARTED,
        question=QUESTION,
        state=AppState.UNCONFIRMED,
        next_poll_at=None,
        options={"preset": "medium", "idempotency_key": record.form_key},
        created=timezone.now() - timedelta(minutes=5),
    )
    response = start(writer, {"question": QUESTION}, key)
    assert response.status_code == 200 and response.json()["id"] == row.slug
    assert response.json()["status"] == "UNCONFIRMED" and starts(simulator) == 0
    # One that died before reserving anything is released, and the key starts afresh.
    other = str(uuid.uuid4())
    IdempotencyRecord.objects.create(
        user=owner,
        key=other,
        body_hash=_digest_of({"question": QUESTION}),
        form_key=str(uuid.uuid4()),
        created=timezone.now() - timedelta(minutes=5),
    )
    assert start(writer, {"question": QUESTION}, other).status_code == 201
    assert starts(simulator) == 1


def _digest_of(body: dict[str, Any]) -> str:
    from sonarweb.api.schemas import ResearchIn
    from sonarweb.api.starts import fingerprint, validated_form

    return fingerprint(validated_form(ResearchIn(**body)))


# -- start: at once, over real HTTP ------------------------------------------------------------


def _post_all(
    url: str, token: str, sends: list[tuple[str, dict[str, Any]]]
) -> list[httpx.Response]:
    """Each start in its own thread and connection, all released together."""
    barrier = threading.Barrier(len(sends))
    answers: list[httpx.Response | None] = [None] * len(sends)

    def send(index: int) -> None:
        key, body = sends[index]
        try:
            with httpx.Client(base_url=url, timeout=90) as http:
                barrier.wait(timeout=30)
                answers[index] = http.post(
                    "/api/v1/research",
                    json=body,
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(sends))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(a is not None for a in answers), "a start did not finish"
    return answers  # type: ignore[return-value]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_starts_make_exactly_one_run(
    live_server, sim_server, simulator, owner, settings
):
    settings.PERPLEXITY_READ_TIMEOUT = 10.0  # a busy machine must not turn 1.5 s into a timeout
    token = make_token(owner)
    # The create takes a while, so every start arrives while the first is in flight.
    simulator.inject("slow", endpoint="start", delay=1.5, times=None)
    key = str(uuid.uuid4())
    answers = _post_all(live_server.url, token, [(key, {"question": QUESTION})] * 5)
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert {a.json()["status"] for a in answers} <= {"CREATED", "IN_PROGRESS"}
    assert starts(simulator) == 1
    assert TrackedRequest.objects.count() == 1 and IdempotencyRecord.objects.count() == 1
    assert [a.headers.get("Idempotent-Replayed") for a in answers].count("true") == 4


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_start_in_flight_is_waited_for_and_another_body_is_refused(
    live_server, sim_server, simulator, owner, settings
):
    settings.PERPLEXITY_READ_TIMEOUT = 10.0
    token = make_token(owner)
    simulator.inject("slow", endpoint="start", delay=3.0, times=1)
    key = str(uuid.uuid4())
    body = {"question": QUESTION}
    first: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: first.extend(_post_all(live_server.url, token, [(key, body)]))
    )
    thread.start()
    # The first start holds the key and waits for Perplexity.
    wait_for(
        lambda: IdempotencyRecord.objects.filter(key=key, completed_at__isnull=True).exists(),
        "the first start to reserve its key",
    )
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    with httpx.Client(base_url=live_server.url, timeout=90) as http:
        other = http.post("/api/v1/research", json={"question": "Another"}, headers=headers)
        still_in_flight = IdempotencyRecord.objects.filter(key=key, completed_at__isnull=True)
        assert other.status_code == 409, "another body is refused at once"
        assert still_in_flight.exists(), "the 409 did not wait for the first start"
        second = http.post("/api/v1/research", json=body, headers=headers)
    thread.join(timeout=120)
    assert second.status_code == 200, second.text
    # Answered once the first had its run: never the reservation, never a 409.
    assert second.json()["status"] in ("CREATED", "IN_PROGRESS")
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first[0].status_code == 201 and first[0].json()["id"] == second.json()["id"]
    assert starts(simulator) == 1


# -- track -------------------------------------------------------------------------------------


def test_track_an_existing_run(owner, writer, sim_server, simulator):
    run_id = simulator.add_run(OWNER_KEY, run_seconds=3600)
    first = call("post", "/api/v1/requests", writer, {"request_id": run_id})
    assert first.status_code == 201, first.content
    tracked = TrackedRequest.objects.get(request_id=run_id)
    assert first.json()["id"] == tracked.slug and tracked.origin == Origin.IMPORTED
    assert first.json()["status"] == "PENDING" and first.json()["poll_after_seconds"] >= 2
    no_upstream_id(first, run_id)
    pasted = f"https://www.perplexity.ai/somewhere?id={run_id}"
    again = call("post", "/api/v1/requests", writer, {"request_id": pasted})
    assert again.status_code == 200 and again.json()["id"] == tracked.slug
    assert AuditEvent.objects.filter(action=AuditAction.IMPORTED).count() == 1


@pytest.mark.parametrize(
    "value", ["", "resp_1234", "two words", "../etc/passwd", "resp_" + "0" * 36]
)
def test_track_refuses_what_is_no_id(writer, value):
    problem(call("post", "/api/v1/requests", writer, {"request_id": value}), 422, "invalid-request")
    assert TrackedRequest.objects.count() == 0


def test_track_needs_a_saved_key(member):
    token = make_token(member)
    response = call("post", "/api/v1/requests", token, {"request_id": str(uuid.uuid4())})
    problem(response, 422, "no-api-key")


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_a_running_request_once(owner, writer, sim_server, simulator):
    tracked = running_request(simulator, owner)
    response = call("post", f"/api/v1/requests/{tracked.slug}/cancel", writer)
    assert response.status_code == 202, response.content
    assert response.json()["cancelling"] is True and response.json()["status"] == "IN_PROGRESS"
    assert simulator.calls.count(endpoint="cancel") == 1
    again = call("post", f"/api/v1/requests/{tracked.slug}/cancel", writer)
    assert again.status_code == 202 and simulator.calls.count(endpoint="cancel") == 1
    [event] = AuditEvent.objects.filter(action=AuditAction.CANCELLED)
    assert event.actor == owner


def test_only_the_adder_and_staff_cancel(owner, member, staff, sim_server, simulator):
    tracked = running_request(simulator, owner)
    path = f"/api/v1/requests/{tracked.slug}/cancel"
    problem(call("post", path, make_token(member)), 403, "forbidden")
    assert simulator.calls.count(endpoint="cancel") == 0
    assert call("post", path, make_token(staff)).status_code == 202


def test_a_finished_or_sonar_request_cannot_be_cancelled(owner, writer, sim_server, simulator):
    finished = finished_request(simulator, owner)
    document = problem(
        call("post", f"/api/v1/requests/{finished.slug}/cancel", writer), 409, "not-cancellable"
    )
    assert "already finished" in document["detail"]
    sonar = TrackedRequest.objects.create(request_id=str(uuid.uuid4()), added_by=owner)
    response = call("post", f"/api/v1/requests/{sonar.slug}/cancel", writer)
    document = problem(response, 409, "not-cancellable")
    assert "Sonar" not in document["detail"] and "Agent" not in document["detail"]
    assert simulator.calls.count(endpoint="cancel") == 0


def test_a_cancel_upstream_refuses_is_released(owner, writer, sim_server, simulator):
    tracked = running_request(simulator, owner)
    simulator.inject("rate_limit", endpoint="cancel", retry_after=9)
    response = call("post", f"/api/v1/requests/{tracked.slug}/cancel", writer)
    problem(response, 429, "upstream-rate-limited")
    assert response["Retry-After"] == "9"
    tracked.refresh_from_db()
    assert tracked.cancel_requested_at is None
    assert call("post", f"/api/v1/requests/{tracked.slug}/cancel", writer).status_code == 202


# -- share -------------------------------------------------------------------------------------


def test_make_and_revoke_a_public_link(owner, writer, anon_client):
    tracked = archived_request(owner, question="Shared answer")
    path = f"/api/v1/requests/{tracked.slug}/share"
    made = call("post", path, writer)
    assert made.status_code == 201, made.content
    url = made.json()["url"]
    assert url.startswith("http://testserver/s/") and made.json()["expires_at"] is None
    assert anon_client.get(url.removeprefix("http://testserver")).status_code == 200
    week = call("post", path, writer, {"expires_in_days": 7}).json()
    assert week["expires_at"] and ShareLink.objects.count() == 2
    problem(call("post", path, writer, {"expires_in_days": 5}), 422, "invalid-request")

    revoked = call("delete", path, writer)
    assert revoked.status_code == 200 and revoked.json() == {"revoked": 2}
    assert anon_client.get(url.removeprefix("http://testserver")).status_code == 404
    assert call("delete", path, writer).json() == {"revoked": 0}
    links = AuditEvent.objects.filter(action__startswith="link_")
    actions = list(links.values_list("action", "actor__username").order_by("id"))
    assert actions == [("link_created", "olivia")] * 2 + [("link_revoked", "olivia")] * 2


def test_only_an_answer_can_be_shared(owner, writer):
    tracked = TrackedRequest.objects.create(request_id="job-running", added_by=owner)
    problem(call("post", f"/api/v1/requests/{tracked.slug}/share", writer), 409, "no-answer")
    problem(call("post", "/api/v1/requests/nope/share", writer), 404, "not-found")


# -- limits ------------------------------------------------------------------------------------


def test_write_calls_are_limited_per_token(owner, writer, reader, monkeypatch):
    monkeypatch.setattr(throttling, "WRITES_PER_MINUTE", 2)
    tracked = archived_request(owner, question="Shared answer")
    path = f"/api/v1/requests/{tracked.slug}/share"
    assert call("post", path, writer).status_code == 201
    assert call("delete", path, writer).status_code == 200
    refused = call("post", path, writer)
    document = problem(refused, 429, "rate-limited")
    assert 1 <= int(refused["Retry-After"]) <= 60 and document["retry_after"] >= 1
    # Another token of the same member has its own window; reads are not limited.
    assert call("post", path, make_token(owner)).status_code == 201
    for _ in range(5):
        assert call("get", f"/api/v1/requests/{tracked.slug}", reader).status_code == 200
    # A minute later the token may write again.
    ApiToken.objects.filter(prefix=writer[3:11]).update(
        window_start=timezone.now() - timedelta(seconds=61)
    )
    assert call("post", path, writer).status_code == 201


def test_no_response_holds_the_perplexity_key(owner, writer, sim_server, simulator):
    tracked = finished_request(simulator, owner)
    texts = [
        call("get", f"/api/v1/requests/{tracked.slug}", writer).content.decode(),
        call("get", f"/api/v1/requests/{tracked.slug}/answer", writer).content.decode(),
        call("get", "/api/v1/requests", writer).content.decode(),
        start(writer, {"question": QUESTION}, "k1").content.decode(),
    ]
    for text in texts:
        assert OWNER_KEY not in text and "pplx-" not in text


def test_the_page_start_still_works_beside_the_api(owner_client, sim_server, simulator):
    """The form and the API share the start: a form submit is still one run."""
    data = {"question": QUESTION, "preset": "medium", "idempotency_key": str(uuid.uuid4())}
    first = owner_client.post("/new/", data)
    second = owner_client.post("/new/", data)
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"] and starts(simulator) == 1


def test_a_slow_start_still_answers_within_the_interactive_deadline(
    writer, sim_server, simulator, settings
):
    settings.PERPLEXITY_INTERACTIVE_TIMEOUT = 1.0
    simulator.inject("slow", endpoint="start", delay=3)
    began = time.monotonic()
    response = start(writer, {"question": QUESTION}, str(uuid.uuid4()))
    assert response.status_code == 201 and response.json()["status"] == "UNCONFIRMED"
    assert time.monotonic() - began < 30
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", response.json()["id"])


def test_a_body_that_is_not_json_is_a_problem(writer, sim_server, simulator):
    response = Client().post(
        "/api/v1/research",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {writer}",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == "application/problem+json"
    assert starts(simulator) == 0


def test_the_api_sets_no_cookie(owner, reader, writer):
    tracked = archived_request(owner, question="Cookies")
    for response in (
        call("get", f"/api/v1/requests/{tracked.slug}", reader),
        call("post", f"/api/v1/requests/{tracked.slug}/share", writer),
        call("get", "/api/v1/requests", None),
    ):
        assert not response.cookies, response.cookies
