from __future__ import annotations

import re

import pytest

from sonarweb.tracker.models import TrackedRequest

from .conftest import OWNER_KEY

pytestmark = pytest.mark.django_db

UUID = "3f1c9a2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b"


def test_anonymous_visitors_are_sent_to_login(anon_client):
    for url in ("/", "/settings/", "/r/whatever/", "/r/whatever/status/", "/badges/"):
        response = anon_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_dashboard_has_labelled_form_and_lists_team_rows(owner_client, owner, member):
    TrackedRequest.objects.create(request_id="job-older", added_by=member)
    TrackedRequest.objects.create(request_id="job-newer", added_by=owner, model="sonar-pro")
    response = owner_client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<label for="id_request_id">Request ID</label>', html)
    assert html.index("job-newer") < html.index("job-older")
    assert "mateo" in html and "olivia" in html and "sonar-pro" in html
    assert 'data-status="PENDING"' in html
    assert 'id="badge-poller"' in html and "hx-trigger" in html


def test_submitting_redirects_303_to_the_permalink(owner_client, owner, simulator):
    response = owner_client.post("/", {"request_id": f"  {UUID}  "})
    assert response.status_code == 303
    tracked = TrackedRequest.objects.get()
    assert tracked.request_id == UUID
    assert tracked.added_by == owner
    assert response["Location"] == f"/r/{tracked.slug}/"


def test_urls_and_json_are_accepted(owner_client):
    owner_client.post("/", {"request_id": f"https://api.perplexity.ai/v1/async/sonar/{UUID}"})
    owner_client.post("/", {"request_id": f'{{"id": "{UUID}"}}'})
    assert TrackedRequest.objects.get().request_id == UUID


def test_same_id_twice_leads_to_one_permalink(owner_client, member_client):
    first = owner_client.post("/", {"request_id": UUID})
    second = member_client.post("/", {"request_id": UUID})
    assert second.status_code == 303
    assert first["Location"] == second["Location"]
    assert TrackedRequest.objects.count() == 1


@pytest.mark.parametrize("bad", ["", "   ", "a b", "a/b", "..", "x" * 129, "a\x01b"])
def test_implausible_ids_get_a_form_error_and_never_reach_upstream(
    owner_client, sim_server, simulator, bad
):
    response = owner_client.post("/", {"request_id": bad})
    assert response.status_code == 422
    assert 'class="form-error"' in response.content.decode()
    assert TrackedRequest.objects.count() == 0
    assert simulator.calls.count() == 0


def test_member_without_key_is_told_to_add_one(member_client):
    page = member_client.get("/").content.decode()
    assert 'href="/settings/"' in page and "Add your API key" in page
    response = member_client.post("/", {"request_id": UUID})
    assert response.status_code == 422
    assert "Add your Perplexity API key in Settings" in response.content.decode()
    assert TrackedRequest.objects.count() == 0


def test_batched_badge_poll_updates_rows_and_stops_when_finished(
    owner_client, owner, sim_server, simulator
):
    done = simulator.add_job(OWNER_KEY, run_seconds=0, queue_seconds=0)
    running = simulator.add_job(OWNER_KEY)
    a = TrackedRequest.objects.create(request_id=done, added_by=owner)
    b = TrackedRequest.objects.create(request_id=running, added_by=owner)
    response = owner_client.get(f"/badges/?s={a.slug}&s={b.slug}", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert f'id="badge-{a.slug}"' in html and 'hx-swap-oob="true"' in html
    assert 'data-status="COMPLETED"' in html and 'data-status="IN_PROGRESS"' in html
    poller = re.search(r'<div id="badge-poller"[^>]*>', html).group(0)
    assert f"s={b.slug}" in poller and f"s={a.slug}" not in poller
    TrackedRequest.objects.filter(pk=b.pk).update(next_poll_at=None, status="COMPLETED")
    html = owner_client.get(f"/badges/?s={b.slug}").content.decode()
    assert "hx-trigger" not in html


def test_pages_send_csp_without_inline_scripts(owner_client):
    response = owner_client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in response.content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in response.content.decode()
