from __future__ import annotations

import re

import pytest

from sonarweb.tracker.models import TrackedRequest

from .conftest import OWNER_KEY, poll

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


def test_cached_finished_page_is_kept_per_host(
    owner_client, owner, sim_server, simulator, settings
):
    from sonarweb.tracker.models import ShareLink

    settings.ALLOWED_HOSTS = ["research.example.com", "research.example.org"]
    tracked = track(simulator, owner, run_seconds=0, queue_seconds=0)
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    for _ in range(2):  # the second round is served from the page cache
        for host in settings.ALLOWED_HOSTS:
            response = owner_client.get(f"/r/{tracked.slug}/", HTTP_HOST=host)
            assert response.status_code == 200
            html = response.content.decode()
            assert f">http://{host}/s/{link.token}/</textarea>" in html
    secure = owner_client.get(f"/r/{tracked.slug}/", HTTP_HOST="research.example.com", secure=True)
    assert f">https://research.example.com/s/{link.token}/</textarea>" in secure.content.decode()
