from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from sonarweb.tracker.models import TrackedRequest

from .conftest import OWNER_KEY, archived_request, poll

pytestmark = pytest.mark.django_db


def track(simulator, owner, **job) -> TrackedRequest:
    """A tracked job, polled once the way the refresher does."""
    return poll(
        TrackedRequest.objects.create(
            request_id=simulator.add_job(OWNER_KEY, **job), added_by=owner
        )
    )


def test_owner_and_member_can_open_permalink_anonymous_cannot(
    owner_client, member_client, anon_client, owner, sim_server, simulator
):
    tracked = track(simulator, owner)
    for client in (owner_client, member_client):
        response = client.get(f"/r/{tracked.slug}/")
        assert response.status_code == 200
        assert tracked.request_id in response.content.decode()
    response = anon_client.get(f"/r/{tracked.slug}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_unknown_slug_is_404(owner_client):
    assert owner_client.get("/r/nope/").status_code == 404


def test_unfinished_badge_polls_itself(owner_client, owner, sim_server, simulator):
    tracked = track(simulator, owner)
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert 'data-status="IN_PROGRESS"' in html
    block = re.search(r'<div id="status"[^>]*>', html).group(0)
    assert f'hx-get="/r/{tracked.slug}/status/"' in block
    assert 'hx-trigger="every 3s"' in block
    assert "Elapsed" in html and "Upstream keeps it until" in html


def test_status_partial_swaps_final_badge_and_answer(owner_client, owner, sim_server, simulator):
    tracked = track(simulator, owner, run_seconds=0, queue_seconds=0)
    html = owner_client.get(f"/r/{tracked.slug}/status/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html
    block = re.search(r'<div id="status"[^>]*>', html).group(0)
    assert "hx-trigger" not in block
    assert 'data-status="COMPLETED"' in html
    assert '<section id="answer"' in html and 'hx-swap-oob="true"' in html
    assert 'href="#source-1"' in html or "source-1" in html


def test_completed_page_shows_answer_from_the_archive(
    owner_client, member_client, owner, sim_server, simulator
):
    tracked = track(simulator, owner, run_seconds=0, queue_seconds=0)
    calls = simulator.calls.count()
    html = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert simulator.calls.count() == calls
    assert 'data-status="COMPLETED"' in html
    assert "Run time" in html and "Cost" in html
    assert 'id="source-1"' in html


def test_failed_job_shows_error_message(owner_client, owner, sim_server, simulator):
    tracked = track(
        simulator,
        owner,
        run_seconds=0,
        queue_seconds=0,
        outcome="FAILED",
        error_message="The model ran out of <time>.",
    )
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert 'data-status="FAILED"' in html
    assert "The model ran out of &lt;time&gt;." in html


@pytest.mark.parametrize(
    ("state", "sentence"),
    [
        ("PENDING", "Waiting for the first answer"),
        ("NOT_FOUND", "does not know this request id"),
        ("KEY_INVALID", "rejected or removed"),
        ("ERROR", "retrying"),
    ],
)
def test_app_states_have_sentences(owner_client, owner, state, sentence):
    tracked = TrackedRequest.objects.create(
        request_id=f"job-{state}", added_by=owner, state=state, next_poll_at=None
    )
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert f'data-status="{state}"' in html
    assert sentence in html


def test_upstream_down_never_answers_500(owner_client, owner, settings):
    settings.PERPLEXITY_API_BASE = "http://127.0.0.1:9"
    tracked = poll(TrackedRequest.objects.create(request_id="job-x", added_by=owner))
    response = owner_client.get(f"/r/{tracked.slug}/")
    assert response.status_code == 200
    assert "could not be reached" in response.content.decode()


def test_pages_and_polls_never_call_upstream_and_only_ask_for_an_early_poll(
    owner_client, owner, sim_server, simulator
):
    from datetime import timedelta

    from django.utils import timezone

    tracked = track(simulator, owner)
    later = timezone.now() + timedelta(seconds=30)
    TrackedRequest.objects.filter(pk=tracked.pk).update(next_poll_at=later)
    calls = simulator.calls.count()
    owner_client.get(f"/r/{tracked.slug}/")
    owner_client.get(f"/r/{tracked.slug}/status/", HTTP_HX_REQUEST="true")
    owner_client.get(f"/badges/?s={tracked.slug}", HTTP_HX_REQUEST="true")
    assert simulator.calls.count() == calls, "a page view never calls upstream"
    tracked.refresh_from_db()
    # Someone is watching: due within the fast interval, for the refresher's next pass.
    assert tracked.next_poll_at <= timezone.now() + timedelta(seconds=3)


def test_a_finished_page_spells_its_links_with_each_host(
    owner_client, owner, sim_server, simulator, settings
):
    from sonarweb.tracker.models import ShareLink

    settings.ALLOWED_HOSTS = ["research.example.com", "research.example.org"]
    tracked = track(simulator, owner, run_seconds=0, queue_seconds=0)
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    tags = set()
    for _ in range(2):  # the second round has a CSRF cookie, and so an ETag
        for host in settings.ALLOWED_HOSTS:
            response = owner_client.get(f"/r/{tracked.slug}/", HTTP_HOST=host)
            assert response.status_code == 200
            html = response.content.decode()
            assert f">http://{host}/s/{link.token}/</textarea>" in html
            tags.add(response.get("ETag"))
    assert len(tags - {None}) == 2  # one per host
    secure = owner_client.get(f"/r/{tracked.slug}/", HTTP_HOST="research.example.com", secure=True)
    assert f">https://research.example.com/s/{link.token}/</textarea>" in secure.content.decode()


def test_a_finished_page_answers_a_revisit_with_304_until_it_changes(
    owner_client, member_client, owner, sim_server, simulator, settings
):
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from sonarweb.tracker.models import AnswerArchive

    tracked = track(simulator, owner, run_seconds=0, queue_seconds=0)
    url = f"/r/{tracked.slug}/"
    assert "ETag" not in owner_client.get(url)  # the first view makes the CSRF cookie

    def revisit(client, etag: str) -> str:
        """The ETag of a page that changed (a full 200); fails on a 304."""
        response = client.get(url, headers={"if-none-match": etag})
        assert response.status_code == 200, "served as unchanged"
        assert response["ETag"] != etag and "answer-section" in response.content.decode()
        return response["ETag"]

    etag = owner_client.get(url)["ETag"]
    unchanged = owner_client.get(url, headers={"if-none-match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    # The row changes (a new title).
    owner_client.post(f"/r/{tracked.slug}/title/", {"title": "Renamed"}, HTTP_HX_REQUEST="true")
    etag = revisit(owner_client, etag)
    # The answer is rendered again.
    AnswerArchive.objects.filter(pk=tracked.pk).update(rendered_at=timezone.now())
    etag = revisit(owner_client, etag)
    # Another member, with their own page (their name, their CSRF token).
    member_client.get(url)
    member_etag = member_client.get(url)["ETag"]
    assert member_etag != etag
    assert owner_client.get(url, headers={"if-none-match": member_etag}).status_code == 200
    # A new CSRF secret: the page's token comes from it.
    owner_client.cookies[settings.CSRF_COOKIE_NAME] = get_random_string(32)
    etag = revisit(owner_client, etag)
    assert owner_client.get(url, headers={"if-none-match": etag}).status_code == 304
    # A message waiting to be shown is shown, whatever copy the browser has.
    owner_client.post(f"/r/{tracked.slug}/title/", {"title": "Renamed again"})
    shown = owner_client.get(url, headers={"if-none-match": etag})
    assert shown.status_code == 200 and "Title saved." in shown.content.decode()
    assert "ETag" not in shown


def test_an_unfinished_page_has_no_etag(owner_client, owner, sim_server, simulator):
    tracked = track(simulator, owner)
    for _ in range(2):
        response = owner_client.get(f"/r/{tracked.slug}/")
        assert response.status_code == 200 and "ETag" not in response


# Agent run statuses and the app's own stopped states ---------------------------------------

EXAMPLES = Path(__file__).parent / "fixtures" / "agent_api_examples.json"


def example(name: str, **changes: object) -> dict:
    """One of the example Agent API bodies, with a fresh run id unless one is given."""
    document = json.loads(EXAMPLES.read_text())[name]
    document["id"] = f"resp_{uuid.uuid4()}"
    document.update(changes)
    return document


def status_block(html: str) -> str:
    return re.search(r'<div id="status".*?<dl class="facts timing">', html, re.S).group(0)


def assert_not_polled(client, tracked: TrackedRequest) -> str:
    """The page and its status partial carry no poll, nor the watching script."""
    html = client.get(f"/r/{tracked.slug}/").content.decode()
    assert "hx-trigger" not in re.search(r'<div id="status"[^>]*>', html).group(0)
    assert "watch.js" not in html and 'id="status-announcer"' not in html
    partial = client.get(f"/r/{tracked.slug}/status/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in re.search(r'<div id="status"[^>]*>', partial).group(0)
    return html


def test_incomplete_run_shows_its_partial_answer_and_why_it_stopped(owner_client, owner):
    tracked = archived_request(owner, example("get_incomplete"))
    assert tracked.status == "INCOMPLETE" and tracked.has_answer and not tracked.is_polling
    html = assert_not_polled(owner_client, tracked)
    block = status_block(html)
    assert 'data-status="INCOMPLETE"' in block and ">Incomplete</span>" in block
    assert "Finished early: Perplexity stopped before the answer was complete." in block
    assert "The answer was cut off by the output limit (max_output_tokens)." in block
    # The partial answer itself, with the renderer's note and its sources.
    assert '<p class="answer-note">' in html
    assert "Modern cold-climate heat pumps keep a COP above 2" in html
    assert 'id="source-1"' in html
    # Completed runs name the resolved model; so does an incomplete one.
    assert "<dt>Model</dt><dd>openai/gpt-6-luna</dd>" in html
    assert "<dt>Completed</dt>" in html and "<dt>Failed</dt>" not in html
    assert 'class="back-to-top' in html


def test_incomplete_reasons_in_words_or_as_upstream_spelled_them(owner_client, owner):
    odd = archived_request(
        owner, example("get_incomplete", incomplete_details={"reason": "<b>quota</b>"})
    )
    html = owner_client.get(f"/r/{odd.slug}/").content.decode()
    assert "Perplexity gave the reason “&lt;b&gt;quota&lt;/b&gt;”." in status_block(html)
    silent = archived_request(owner, example("get_incomplete", incomplete_details=None))
    html = owner_client.get(f"/r/{silent.slug}/").content.decode()
    assert "Perplexity did not say why the answer was cut off." in status_block(html)


def test_partial_answers_can_be_downloaded_and_shared(owner_client, anon_client, owner):
    from sonarweb.tracker.archive.images import build_and_store, stale_bundles
    from sonarweb.tracker.models import ShareLink

    for document in (example("get_incomplete"), example("get_cancelled")):
        tracked = archived_request(owner, document)
        # The refresher builds the .zip of every archived answer, partial ones too.
        assert tracked.pk in stale_bundles(10)
        build_and_store(tracked.pk)
        bundle = owner_client.get(f"/r/{tracked.slug}/archive.zip")
        assert bundle.status_code == 200 and bundle["Content-Type"] == "application/zip"
        assert owner_client.get(f"/r/{tracked.slug}/answer.md").status_code == 200
        raw = owner_client.get(f"/r/{tracked.slug}/answer.json")
        assert raw.status_code == 200 and json.loads(raw.content)["id"] == document["id"]
        page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
        assert "Download Markdown" in page
        response = owner_client.post(f"/r/{tracked.slug}/share/", {"expires": "never"})
        assert response.status_code == 303
        link = ShareLink.objects.get(tracked=tracked)
        public = anon_client.get(f"/s/{link.token}/")
        assert public.status_code == 200
        html = public.content.decode()
        assert f'data-status="{tracked.status}"' in html
        assert ("Perplexity stopped before" in html) or ("The research was cancelled" in html)


def test_failed_run_shows_upstreams_error_as_text(owner_client, owner):
    document = example(
        "get_failed_http_200",
        error={"message": "Tool <script>alert(1)</script> crashed", "type": "internal_error"},
    )
    tracked = archived_request(owner, document)
    assert tracked.status == "FAILED" and not tracked.has_answer
    html = assert_not_polled(owner_client, tracked)
    assert 'data-status="FAILED"' in status_block(html)
    assert "Tool &lt;script&gt;alert(1)&lt;/script&gt; crashed" in html
    assert "<script>alert(1)" not in html
    assert "Download Markdown" not in html and "<dt>Model</dt><dd>medium</dd>" in html
    assert "<dt>Failed</dt>" in html


def test_cancelled_run_shows_what_it_kept(owner_client, owner):
    tracked = archived_request(owner, example("get_cancelled"))
    assert tracked.status == "CANCELLED" and tracked.has_answer
    html = assert_not_polled(owner_client, tracked)
    block = status_block(html)
    assert 'data-status="CANCELLED"' in block and ">Cancelled</span>" in block
    assert "Whatever the research had written by then is kept." in block
    assert "Cancel run…" not in html
    assert "<dt>Cancelled</dt>" in html and "<dt>Failed</dt>" not in html
    # Nothing was written before the cancel here: the answer section says so.
    assert '<section id="answer"' in html and "The answer is empty." in html


def test_retired_sonar_job_keeps_its_id_and_is_never_polled(
    owner_client, owner, sim_server, simulator
):
    job = simulator.add_job(OWNER_KEY)
    simulator.sonar_retired = True
    tracked = poll(TrackedRequest.objects.create(request_id=job, added_by=owner))
    assert tracked.state == "RETIRED" and tracked.next_poll_at is None
    html = assert_not_polled(owner_client, tracked)
    block = status_block(html)
    assert 'data-status="RETIRED"' in block and ">Sonar retired</span>" in block
    assert "Perplexity retired the Sonar API on 2026-09-27" in block
    assert f'<dd class="mono">{job}</dd>' in html
    calls = simulator.calls.count()
    owner_client.get(f"/r/{tracked.slug}/")
    owner_client.get(f"/r/{tracked.slug}/status/", HTTP_HX_REQUEST="true")
    tracked.refresh_from_db()
    assert tracked.next_poll_at is None and simulator.calls.count() == calls


@pytest.mark.parametrize("state", ["RETIRED", "UNCONFIRMED"])
def test_stopped_states_are_not_polled_even_with_a_poll_time(owner_client, owner, state):
    # Written with a poll time still set (as a row written before the state existed might
    # be): pages do not poll a row the app has stopped following.
    tracked = TrackedRequest.objects.create(
        request_id=f"job-{state}", added_by=owner, state=state, status="IN_PROGRESS"
    )
    assert tracked.is_polling
    html = assert_not_polled(owner_client, tracked)
    assert f'data-status="{state}"' in status_block(html)


def test_unconfirmed_start_says_to_check_before_starting_again(owner_client, owner):
    tracked = TrackedRequest.objects.create(
        request_id=f"resp_{uuid.uuid4()}",
        added_by=owner,
        state="UNCONFIRMED",
        next_poll_at=None,
        model="medium",
        options={"preset": "medium"},
    )
    html = assert_not_polled(owner_client, tracked)
    block = status_block(html)
    assert 'data-status="UNCONFIRMED"' in block and ">May have started</span>" in block
    assert "check your Perplexity usage before starting it again" in block
    assert "Cancel run…" not in html


def test_an_unknown_upstream_status_shows_as_itself_and_keeps_polling(owner_client, owner):
    tracked = TrackedRequest.objects.create(
        request_id=f"resp_{uuid.uuid4()}", added_by=owner, status="requires_action"
    )
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    block = status_block(html)
    assert 'class="badge badge-other" data-status="requires_action"' in block
    assert ">requires_action</span>" in block
    assert "checked again like a running job" in block
    assert f'hx-get="/r/{tracked.slug}/status/' in block and "watch.js" in html
    # Still running as far as sonarweb can tell, so its adder may cancel it.
    assert "Cancel run…" in html
