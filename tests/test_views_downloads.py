"""Downloads of an archived answer: answer.md and answer.json."""

from __future__ import annotations

import json

import httpx
import pytest

from sonarweb.tracker.models import TrackedRequest

from .conftest import OWNER_KEY, archived_request, poll

pytestmark = pytest.mark.django_db


def track(simulator, owner, **job) -> TrackedRequest:
    job.setdefault("queue_seconds", 0)
    job.setdefault("run_seconds", 0)
    tracked = TrackedRequest.objects.create(
        request_id=simulator.add_job(OWNER_KEY, **job), added_by=owner
    )
    return tracked


def completed(client, simulator, owner, **job) -> TrackedRequest:
    """A request archived the way it happens in use: the refresher polls and stores it."""
    tracked = poll(track(simulator, owner, **job))
    assert client.get(f"/r/{tracked.slug}/").status_code == 200
    assert tracked.has_answer
    return tracked


def disposition(response) -> str:
    value = response["Content-Disposition"]
    assert value.startswith("attachment; ")
    return value


def test_markdown_has_answer_and_numbered_sources_but_no_reasoning(
    owner_client, member_client, owner, sim_server, simulator
):
    tracked = completed(owner_client, simulator, owner, words=600, sources=5, images=2)
    TrackedRequest.objects.filter(pk=tracked.pk).update(question="Do heat pumps work in Oslo?")
    for client in (owner_client, member_client):
        response = client.get(f"/r/{tracked.slug}/answer.md")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/markdown; charset=utf-8"
        assert disposition(response) == 'attachment; filename="do-heat-pumps-work-in-oslo.md"'
    text = response.content.decode()
    assert text.startswith("# Do heat pumps work in Oslo?\n")
    assert "[^1]" in text
    sources = text.split("## Sources\n\n", 1)[1].strip().splitlines()
    notes = [line.split(":", 1)[0] for line in sources if line.startswith("[^")]
    assert notes == sorted(notes, key=lambda n: int(n[2:-1])) and "[^1]" in notes
    assert all("](https://" in line for line in sources if line.startswith(("[^", "- ")))
    document = json.loads(tracked.archive.raw_json)
    thought = document["response"]["choices"][0]["message"]["content"]
    assert "<think>" in thought
    think = thought.split("<think>", 1)[1].split("</think>", 1)[0].strip()
    assert think[:60] not in text and "<think>" not in text
    steps = document["response"]["choices"][0]["message"].get("reasoning_steps") or []
    for step in steps:
        if step.get("thought"):
            assert step["thought"] not in text


def test_markdown_is_named_after_the_request_id_without_a_question(
    owner_client, owner, sim_server, simulator
):
    tracked = completed(owner_client, simulator, owner, words=200, sources=2, images=0)
    response = owner_client.get(f"/r/{tracked.slug}/answer.md")
    assert disposition(response) == f'attachment; filename="{tracked.request_id}.md"'
    assert tracked.request_id not in response.content.decode()


@pytest.mark.parametrize(
    "question",
    ['Quotes " and \\ backslashes / slashes\r\nHeader: injected', "../../etc/passwd", "日本の電力"],
)
def test_filenames_are_safe_whatever_the_question(
    owner_client, owner, sim_server, simulator, question
):
    tracked = completed(owner_client, simulator, owner, words=200, sources=2, images=0)
    TrackedRequest.objects.filter(pk=tracked.pk).update(question=question)
    for suffix in ("md", "json"):
        response = owner_client.get(f"/r/{tracked.slug}/answer.{suffix}")
        value = disposition(response)
        filename = value.removeprefix('attachment; filename="').removesuffix('"')
        assert filename.endswith(f".{suffix}")
        assert all(c.isascii() and (c.isalnum() or c in "-.") for c in filename), value
        assert ".." not in filename and "\n" not in value and "\r" not in value


def test_raw_json_is_byte_for_byte_what_upstream_sent(
    owner_client, member_client, owner, sim_server, simulator
):
    tracked = completed(owner_client, simulator, owner, words=300, sources=3, images=1)
    upstream = httpx.get(
        f"{sim_server.url}/v1/async/sonar/{tracked.request_id}",
        headers={"Authorization": f"Bearer {OWNER_KEY}"},
    )
    for client in (owner_client, member_client):
        response = client.get(f"/r/{tracked.slug}/answer.json")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response.content == upstream.content
    assert disposition(response) == f'attachment; filename="{tracked.request_id}.json"'


def test_raw_json_keeps_unusual_text_exactly(owner_client, owner):
    # Key order, spacing, escapes and non-ASCII are kept as stored, not re-serialised.
    raw = (
        '{"status": "COMPLETED","id":"job-odd",  "response": {"choices": [{"message": '
        '{"content": "caf\\u00e9 and café \\ud83d\\ude00 \\"quoted\\""}}]}, "extra": 1.50}'
    )
    tracked = archived_request(owner, json.loads(raw), raw_text=raw)
    response = owner_client.get(f"/r/{tracked.slug}/answer.json")
    assert response.content == raw.encode("utf-8")
    markdown = owner_client.get(f"/r/{tracked.slug}/answer.md").content.decode()
    assert 'café and café 😀 "quoted"' in markdown


def test_unparseable_archive_still_offers_the_raw_json(owner_client, owner):
    from sonarweb.tracker.archive.store import rerender

    tracked = archived_request(owner, request_id="job-broken", raw_text="{not json")
    rerender(tracked.archive, tracked.request_id)
    assert owner_client.get(f"/r/{tracked.slug}/answer.md").status_code == 404
    response = owner_client.get(f"/r/{tracked.slug}/answer.json")
    assert response.status_code == 200 and response.content == b"{not json"


@pytest.mark.parametrize("suffix", ["md", "json"])
def test_no_archived_answer_is_404(owner_client, owner, sim_server, simulator, suffix):
    running = track(simulator, owner, run_seconds=3600)
    failed = track(simulator, owner, outcome="FAILED")
    poll(running)
    poll(failed)
    assert failed.status == "FAILED" and failed.archive.raw_json
    pending = TrackedRequest.objects.create(request_id="job-pending", added_by=owner)
    for tracked in (running, failed, pending):
        assert owner_client.get(f"/r/{tracked.slug}/answer.{suffix}").status_code == 404
    assert owner_client.get(f"/r/nope/answer.{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", ["md", "json"])
def test_downloads_need_sign_in_and_only_read(
    anon_client, owner_client, owner, sim_server, simulator, suffix
):
    tracked = completed(owner_client, simulator, owner, words=200, sources=2, images=0)
    response = anon_client.get(f"/r/{tracked.slug}/answer.{suffix}")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert owner_client.post(f"/r/{tracked.slug}/answer.{suffix}").status_code == 405
    assert owner_client.head(f"/r/{tracked.slug}/answer.{suffix}").status_code == 200
