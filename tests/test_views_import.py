from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sonarweb.simulator.app import Simulator
from sonarweb.tracker.models import ApiKey, Origin, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def simulator() -> Simulator:
    # Three jobs a page, so five jobs make two pages.
    return Simulator(keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, run_seconds=3600, page_size=3)


@pytest.fixture
def jobs(simulator: Simulator) -> list[str]:
    """Five jobs of the owner's key, newest first; one of another key."""
    ids = [
        simulator.add_job(OWNER_KEY, model=model, created_ago=ago, run_seconds=run)
        for model, ago, run in [
            ("sonar-pro", 50, 0),
            ("sonar", 40, 3600),
            ("sonar-deep-research", 30, 3600),
            ("sonar-reasoning-pro", 20, 0),
            ("sonar-deep-research", 10, 3600),
        ]
    ]
    simulator.add_job(MEMBER_KEY, job_id="someone-elses-job")
    return ids[::-1]


def checkbox_ids(html: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="ids" value="([^"]+)"', html)


def test_lists_the_first_page_with_a_load_more_link(owner_client, sim_server, jobs):
    response = owner_client.get("/import/")
    html = response.content.decode()
    assert response.status_code == 200
    assert checkbox_ids(html) == jobs[:3]
    assert "someone-elses-job" not in html
    assert "sonar-reasoning-pro" in html and 'data-status="COMPLETED"' in html
    assert 'data-status="IN_PROGRESS"' in html and "<time datetime=" in html
    assert re.search(r'<span class="sr-only">Track ' + jobs[0], html)
    more = re.search(
        r'<a class="button secondary" id="load-more" href="([^"]+)" hx-get="([^"]+)"', html
    )
    assert more and more.group(1) == more.group(2)
    assert more.group(1).startswith("/import/?next_token=")


def test_load_more_with_htmx_answers_only_the_next_rows(owner_client, sim_server, jobs):
    first = owner_client.get("/import/").content.decode()
    link = re.search(r'id="load-more" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    response = owner_client.get(link, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<tr" in html
    assert checkbox_ids(html) == jobs[3:]
    assert "load-more" not in html  # the last page


def test_load_more_without_js_is_a_plain_page(owner_client, sim_server, jobs):
    first = owner_client.get("/import/").content.decode()
    link = re.search(r'id="load-more" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    html = owner_client.get(link).content.decode()
    assert "<html" in html and checkbox_ids(html) == jobs[3:]


def test_tracked_jobs_are_marked_with_one_query(owner_client, owner, sim_server, jobs):
    tracked = TrackedRequest.objects.create(request_id=jobs[1], added_by=owner)
    with CaptureQueriesContext(connection) as queries:
        html = owner_client.get("/import/").content.decode()
    assert checkbox_ids(html) == [jobs[0], jobs[2]]
    assert f'<a href="/r/{tracked.slug}/" class="tracked-link">Tracked</a>' in html
    lookups = [q["sql"] for q in queries if "tracker_trackedrequest" in q["sql"]]
    assert len(lookups) == 1, lookups


def test_bulk_track_creates_rows_and_skips_tracked_ones(owner_client, owner, sim_server, jobs):
    TrackedRequest.objects.create(request_id=jobs[1], added_by=owner)
    response = owner_client.post(
        "/import/",
        {"ids": jobs[:3], f"model.{jobs[0]}": "sonar-deep-research", f"model.{jobs[2]}": "sonar"},
        follow=True,
    )
    assert response.redirect_chain == [("/", 303)]
    html = response.content.decode()
    assert "Tracking 2 requests." in html and "1 of the chosen requests was already tracked" in html
    imported = TrackedRequest.objects.filter(origin=Origin.IMPORTED).order_by("request_id")
    assert {(t.request_id, t.model) for t in imported} == {
        (jobs[0], "sonar-deep-research"),
        (jobs[2], "sonar"),
    }
    assert all(t.added_by == owner and t.is_polling for t in imported)
    assert TrackedRequest.objects.count() == 3


def test_imported_rows_poll_to_their_status(owner_client, sim_server, jobs):
    from sonarweb.tracker.refresher import run_once

    owner_client.post("/import/", {"ids": [jobs[1]]})
    tracked = TrackedRequest.objects.get()
    run_once()
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert 'data-status="COMPLETED"' in html


def test_invalid_or_missing_ids_are_refused(owner_client, sim_server, simulator):
    response = owner_client.post("/import/", {"ids": ["a/b", "..", "x" * 200]}, follow=True)
    assert "Choose at least one request to track." in response.content.decode()
    assert TrackedRequest.objects.count() == 0
    response = owner_client.post("/import/", {"ids": ["ok-id", "bad id"], "model.ok-id": "<b>"})
    assert response.status_code == 303
    tracked = TrackedRequest.objects.get()
    assert tracked.request_id == "ok-id" and tracked.model == ""


def test_member_without_key_is_told_to_add_one(member_client, sim_server, simulator):
    html = member_client.get("/import/").content.decode()
    assert "Add your API key in Settings" in html and 'href="/settings/"' in html
    response = member_client.post("/import/", {"ids": ["abc"]}, follow=True)
    assert "Add your Perplexity API key in Settings" in response.content.decode()
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 0


def test_rejected_key(owner_client, owner, sim_server, simulator):
    simulator.revoke_key(OWNER_KEY)
    response = owner_client.get("/import/")
    assert response.status_code == 200
    # The first refusal already says what to do about it.
    html = response.content.decode()
    assert 'id="key-rejected"' in html and "Replace it in Settings" in html
    assert ApiKey.objects.get(user=owner).is_invalid
    html = owner_client.get("/import/").content.decode()
    assert "Replace it in Settings" in html


def test_rate_limit_and_server_errors_are_sentences(owner_client, sim_server, simulator, jobs):
    simulator.inject("rate_limit", endpoint="list", retry_after=9)
    html = owner_client.get("/import/").content.decode()
    assert "Perplexity is rate-limiting your API key. Try again in 9 seconds." in html
    simulator.inject("server_error", endpoint="list")
    html = owner_client.get("/import/").content.decode()
    assert "Perplexity had a server error (HTTP 500). Try again in a moment." in html
    simulator.inject("not_json", endpoint="list")
    response = owner_client.get("/import/")
    assert (
        response.status_code == 200
        and "Perplexity sent an answer that is not JSON." in response.content.decode()
    )


def test_failing_load_more_answers_a_retry_row(owner_client, sim_server, simulator, jobs):
    first = owner_client.get("/import/").content.decode()
    link = re.search(r'id="load-more" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    simulator.inject("rate_limit", endpoint="list")
    response = owner_client.get(link, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "rate-limiting" in html and "Try again</a>" in html
    assert checkbox_ids(owner_client.get(link, HTTP_HX_REQUEST="true").content.decode()) == jobs[3:]


def test_a_garbled_token_is_a_sentence(owner_client, sim_server, simulator, jobs):
    response = owner_client.get("/import/", {"next_token": "garbage!!"})
    assert response.status_code == 200
    assert "did not accept this page link" in response.content.decode()


def test_network_failure(owner_client, settings):
    settings.PERPLEXITY_API_BASE = "http://127.0.0.1:9"
    response = owner_client.get("/import/")
    assert response.status_code == 200
    assert "could not be reached" in response.content.decode()


def test_anonymous_and_csrf(anon_client, owner, sim_server, simulator):
    from django.test import Client

    assert anon_client.get("/import/").status_code == 302
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/import/", {"ids": ["abc"]}).status_code == 403
    assert TrackedRequest.objects.count() == 0


def test_a_real_429_on_the_list_pauses_the_key(owner_client, owner, sim_server, simulator, jobs):
    simulator.inject("rate_limit", endpoint="list", retry_after=30)
    owner_client.get("/import/")
    key = ApiKey.objects.get(user=owner)
    assert key.paused_until is not None and key.paused_until > timezone.now()
    assert not key.is_invalid
