from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sonarweb.simulator.app import Simulator
from sonarweb.tracker.models import ApiKey, AppState, Origin, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def simulator() -> Simulator:
    # Three jobs a page, so five jobs make two pages; the Sonar API as it was before its
    # retirement (its list still answers here).
    return Simulator(
        keys=[OWNER_KEY, MEMBER_KEY],
        queue_seconds=0,
        run_seconds=3600,
        page_size=3,
        sonar_retired=False,
    )


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
    from sonarweb.tracker.following.refresher import run_once

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


# -- the page since the Sonar API's retirement ------------------------------------------------


def test_the_page_says_why_agent_runs_cannot_be_listed(owner_client, sim_server, jobs):
    html = owner_client.get("/import/").content.decode()
    assert "Agent API has no way to list a key's runs" in html
    assert "only the runs whose ids you paste here" in html
    assert '<textarea name="pasted"' in html and 'action="/import/upload/"' in html


def test_a_retired_sonar_list_is_one_calm_sentence(owner_client, owner, settings):
    from sonarweb.simulator.server import serve

    retired = Simulator(keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, sonar_retired=True)
    retired.add_job(OWNER_KEY)
    with serve(retired) as server:
        settings.PERPLEXITY_API_BASE = server.url
        response = owner_client.get("/import/")
        html = response.content.decode()
        assert response.status_code == 200
        assert (
            '<p class="note" role="note" id="sonar-retired">Perplexity retired the Sonar API on '
            "2026-09-27, so its job list can no longer be read.</p>"
        ) in html
        assert 'id="import-error"' not in html and "alert-error" not in html
        assert retired.calls.count(endpoint="list", status=403) == 1
        # Not a bad key, and not a pause either.
        key = ApiKey.objects.get(user=owner)
        assert not key.is_invalid and key.paused_until is None
        assert 'id="key-rejected"' not in owner_client.get("/import/").content.decode()
        # A "Load more" that meets the retirement answers the same sentence as a row.
        rows = owner_client.get("/import/?next_token=abc", HTTP_HX_REQUEST="true")
        assert "its job list can no longer be read" in rows.content.decode()
        assert "Try again" not in rows.content.decode()
        # A Sonar id pasted anyway is tracked; the refresher learns it is retired.
        from sonarweb.tracker.following.refresher import run_once

        paste(owner_client, "3f1c9a2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b")
        run_once()
        assert TrackedRequest.objects.get().state == AppState.RETIRED
        assert not ApiKey.objects.get(user=owner).is_invalid


def test_listed_jobs_show_what_is_known_and_fit_a_phone(owner_client, owner, sim_server, jobs):
    TrackedRequest.objects.create(
        request_id=jobs[1], added_by=owner, question="Heat pumps <b>up north</b>?"
    )
    html = owner_client.get("/import/").content.decode()
    # The tracked row's question stands in for the heading the list does not give.
    assert '<span class="id-heading">Heat pumps &lt;b&gt;up north&lt;/b&gt;?</span>' in html
    # Ids in one clipped line, whole in the title.
    assert f'<span class="mono id-clip" title="{jobs[0]}">{jobs[0]}</span>' in html
    assert '<td class="status-cell"><span class="badge' in html
    # Select all: shown by a script file (no inline script), absent in effect without it.
    assert '<p class="select-all" hidden><label class="pick-all" for="select-all">' in html
    assert '<script src="/static/js/import.js' in html and "<script>" not in html


# -- pasting many ids -------------------------------------------------------------------------

RUN_A = "resp_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
RUN_B = "resp_1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
RUN_C = "resp_2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"


def paste(client, text: str, **kwargs):
    return client.post("/import/", {"pasted": text}, **kwargs)


def run_ids(n: int) -> list[str]:
    return [f"resp_{i:08x}-0000-4000-8000-{i:012x}" for i in range(n)]


def report_ids(html: str, section: str) -> list[str]:
    match = re.search(rf'<ul class="id-report" id="report-{section}">(.*?)</ul>', html, re.S)
    if match is None:
        return []
    return re.findall(r'<span class="mono id-clip" title="([^"]+)"', match.group(1))


def test_pasted_mixed_text_tracks_each_id_once_and_reports_each(
    owner_client, owner, sim_server, simulator
):
    text = (
        f"Runs from Monday: {RUN_A}, {RUN_B}\n"
        f"and https://www.perplexity.ai/api/v1/agent/{RUN_C}?x=1 (again: {RUN_A}).\n"
        "Broken one: resp_3d4e5f6a-7b8c-4d9e, thanks!"
    )
    response = paste(owner_client, text)
    html = response.content.decode()
    assert response.status_code == 200
    rows = TrackedRequest.objects.order_by("request_id")
    assert [t.request_id for t in rows] == [RUN_A, RUN_B, RUN_C]
    assert all(
        t.origin == Origin.IMPORTED and t.added_by == owner and t.next_poll_at is not None
        for t in rows
    )
    assert report_ids(html, "tracked") == [RUN_A, RUN_B, RUN_C]
    assert report_ids(html, "invalid") == ["resp_3d4e5f6a-7b8c-4d9e"]
    assert "cut short or has extra characters" in html
    assert "Tracking 3 new requests; 1 id is not valid. 1 repeated id counted once." in html
    for tracked in rows:
        assert f'href="/r/{tracked.slug}/"' in html
    assert simulator.calls.count() == 0  # the refresher asks, not the page


def test_pasted_runs_are_then_polled_on_the_agent_api(owner_client, sim_server, simulator):
    from sonarweb.tracker.following.refresher import run_once

    ids = [simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=0) for _ in range(2)]
    paste(owner_client, "\n".join(ids))
    run_once()
    assert {t.status for t in TrackedRequest.objects.all()} == {"COMPLETED"}
    assert simulator.calls.count(endpoint="run") == 2
    assert simulator.calls.count(endpoint="list") == 0


def test_already_tracked_ids_link_to_their_page(owner_client, member, sim_server):
    tracked = TrackedRequest.objects.create(request_id=RUN_B, added_by=member, title="Oslo")
    html = paste(owner_client, f"{RUN_A} {RUN_B}").content.decode()
    assert report_ids(html, "tracked") == [RUN_A] and report_ids(html, "already") == [RUN_B]
    assert f'<a href="/r/{tracked.slug}/" class="id-link"><span class="id-heading">Oslo' in html
    assert "Tracking 1 new request; 1 was already tracked." in html
    assert TrackedRequest.objects.get(request_id=RUN_B).added_by == member


SONAR_ID = "3f1c9a2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b"
RESPONSE = json.loads(
    (Path(__file__).parent / "fixtures" / "agent_api_examples.json").read_text("utf-8")
)["get_completed"]


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        (json.dumps([RUN_A, RUN_B]), [RUN_A, RUN_B]),
        (json.dumps([{"id": RUN_A, "status": "completed"}, {"id": SONAR_ID}]), [RUN_A, SONAR_ID]),
        (json.dumps(RESPONSE), [RESPONSE["id"]]),
        (json.dumps({"requests": [{"id": SONAR_ID, "status": "COMPLETED"}]}), [SONAR_ID]),
        (
            json.dumps({"team": {"notes": [f"see {RUN_C}", {"deep": [f"x{RUN_A}y", RUN_B]}]}}),
            [RUN_C, RUN_B],
        ),
        (f'["{RUN_A}", "{RUN_B}"', [RUN_A, RUN_B]),  # broken JSON is read as text
    ],
)
def test_pasted_json_in_its_usual_shapes(owner_client, sim_server, pasted, expected):
    html = paste(owner_client, pasted).content.decode()
    assert report_ids(html, "tracked") == expected
    assert sorted(TrackedRequest.objects.values_list("request_id", flat=True)) == sorted(expected)


def test_more_than_200_new_ids_are_capped_with_a_sentence(owner_client, sim_server):
    ids = run_ids(250)
    html = paste(owner_client, "\n".join(ids)).content.decode()
    assert TrackedRequest.objects.count() == 200
    assert set(TrackedRequest.objects.values_list("request_id", flat=True)) == set(ids[:200])
    assert (
        "At most 200 new requests are tracked per submit, so 50 more ids were not imported." in html
    )
    # The same text again tracks the rest: ids already tracked do not count.
    html = paste(owner_client, "\n".join(ids)).content.decode()
    assert TrackedRequest.objects.count() == 250
    assert "Tracking 50 new requests; 200 were already tracked." in html
    assert 'id="paste-capped"' not in html


def test_forty_thousand_ids_are_no_trouble(owner_client, sim_server):
    ids = run_ids(40_000)
    with CaptureQueriesContext(connection) as queries:
        response = paste(owner_client, ",".join(ids))
    assert response.status_code == 200
    assert TrackedRequest.objects.count() == 200
    assert "39800 more ids were not imported" in response.content.decode()
    assert max(q["sql"].count("'resp_") for q in queries) <= 500


def test_many_tracked_ids_are_looked_up_in_chunks(owner_client, owner, sim_server):
    tracked = run_ids(1_200)
    TrackedRequest.objects.bulk_create(
        TrackedRequest(request_id=r, added_by=owner) for r in tracked
    )
    fresh = [RUN_A, RUN_B]
    with CaptureQueriesContext(connection) as queries:
        html = paste(owner_client, " ".join(tracked + fresh)).content.decode()
    lookups = [q["sql"] for q in queries if "tracker_trackedrequest" in q["sql"]]
    assert max(sql.count("'resp_") for sql in lookups) <= 500
    assert report_ids(html, "tracked") == fresh
    assert "Tracking 2 new requests; 1200 were already tracked." in html
    assert "and 1000 more already tracked" in html


def test_a_pasted_sonar_id_is_tracked_too(owner_client, sim_server):
    html = paste(owner_client, f"job {SONAR_ID}").content.decode()
    assert report_ids(html, "tracked") == [SONAR_ID]


def test_invalid_ids_are_shown_as_text(owner_client, sim_server):
    html = paste(owner_client, json.dumps(["<script>alert(1)</script>"])).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert TrackedRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("", "Paste at least one request id."),
        ("nothing to see here", "No request ids were found in what you pasted"),
    ],
)
def test_a_paste_without_ids_is_a_sentence(owner_client, sim_server, text, sentence):
    response = paste(owner_client, text)
    assert response.status_code == 422
    assert sentence in response.content.decode()
    assert TrackedRequest.objects.count() == 0


def test_a_paste_without_a_key_is_refused(member_client, sim_server, simulator):
    response = paste(member_client, RUN_A)
    assert response.status_code == 422
    assert "Add your Perplexity API key in Settings before importing." in response.content.decode()
    assert TrackedRequest.objects.count() == 0


def test_a_paste_needs_the_csrf_token(owner, sim_server):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert paste(client, RUN_A).status_code == 403
    assert TrackedRequest.objects.count() == 0
