"""Public share links: creating, the public page, revoking, expiry, and /links/."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sonarweb.answers.render import RENDER_VERSION
from sonarweb.tracker.following.polling import refresh_if_due
from sonarweb.tracker.models import ShareLink, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY

pytestmark = pytest.mark.django_db


def completed(simulator, owner) -> TrackedRequest:
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    refresh_if_due(tracked)
    tracked.refresh_from_db()
    assert tracked.status == "COMPLETED"
    return tracked


def running(simulator, owner) -> TrackedRequest:
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=3600)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    refresh_if_due(tracked)
    tracked.refresh_from_db()
    assert tracked.status == "IN_PROGRESS"
    return tracked


def share(tracked: TrackedRequest, owner, **fields) -> ShareLink:
    return ShareLink.objects.create(tracked=tracked, created_by=owner, **fields)


def test_owner_and_member_can_create_anonymous_cannot(
    owner_client, member_client, anon_client, owner, member, sim_server, simulator
):
    tracked = completed(simulator, owner)
    response = owner_client.post(f"/r/{tracked.slug}/share/", {"expires": "never"})
    assert response.status_code == 303 and response["Location"] == f"/r/{tracked.slug}/"
    response = member_client.post(f"/r/{tracked.slug}/share/", {"expires": "7"})
    assert response.status_code == 303

    by_owner = ShareLink.objects.get(created_by=owner)
    assert by_owner.tracked == tracked and by_owner.expires_at is None
    by_member = ShareLink.objects.get(created_by=member)
    in_a_week = timezone.now() + timedelta(days=7)
    assert abs(by_member.expires_at - in_a_week) < timedelta(minutes=1)
    # 256 bits of randomness, url-safe base64.
    assert len(by_member.token) >= 43 and by_member.token != by_owner.token

    response = anon_client.post(f"/r/{tracked.slug}/share/", {"expires": "never"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert ShareLink.objects.count() == 2


def test_htmx_create_answers_the_panel_with_an_absolute_url(
    member_client, owner, sim_server, simulator
):
    tracked = completed(simulator, owner)
    response = member_client.post(
        f"/r/{tracked.slug}/share/", {"expires": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    link = ShareLink.objects.get()
    assert "<html" not in html and 'id="share-panel"' in html
    assert f">http://testserver/s/{link.token}/</textarea>" in html
    assert f'hx-post="/links/{link.pk}/revoke/"' in html
    assert "Create public link" in html
    # The panel was swapped with the focus in it: the new link's Copy button takes it.
    assert "Public link created." in html
    copy = re.search(r"<button[^>]*data-copy-from=\"share-url-\d+\"[^>]*>", html).group(0)
    assert "data-focus-after-swap" in copy


def test_revoke_asks_first_without_javascript(member_client, owner, sim_server, simulator):
    tracked = completed(simulator, owner)
    link = share(tracked, owner)
    page = member_client.get(f"/links/{link.pk}/revoke/?from=panel")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Revoke this public link?" in html
    assert f'action="/links/{link.pk}/revoke/"' in html and 'name="from" value="panel"' in html
    assert f'href="/r/{tracked.slug}/"' in html  # Cancel goes back to the answer
    link.refresh_from_db()
    assert link.revoked_at is None  # asking changes nothing
    member_client.post(f"/links/{link.pk}/revoke/", {"from": "panel"})
    link.refresh_from_db()
    assert link.revoked_at is not None


def test_revoke_from_the_panel_by_htmx_moves_the_focus_to_a_notice(
    member_client, owner, sim_server, simulator
):
    tracked = completed(simulator, owner)
    link = share(tracked, owner)
    response = member_client.post(
        f"/links/{link.pk}/revoke/", {"from": "panel"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert re.search(r'<p class="share-notice" tabindex="-1" data-focus-after-swap>', html)
    assert "Public link revoked." in html


@pytest.mark.parametrize("outcome", ["IN_PROGRESS", "FAILED"])
def test_only_completed_requests_can_be_shared(owner_client, owner, sim_server, simulator, outcome):
    if outcome == "FAILED":
        job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, outcome="FAILED")
        tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
        refresh_if_due(tracked)
    else:
        tracked = running(simulator, owner)
    response = owner_client.post(f"/r/{tracked.slug}/share/", {"expires": "never"})
    assert response.status_code == 409
    assert "Only a completed answer can be shared." in response.content.decode()
    assert not ShareLink.objects.exists()
    # Nor does the permalink offer it.
    assert "Create public link" not in owner_client.get(f"/r/{tracked.slug}/").content.decode()


def test_unknown_expiry_is_rejected(owner_client, owner, sim_server, simulator):
    tracked = completed(simulator, owner)
    response = owner_client.post(f"/r/{tracked.slug}/share/", {"expires": "9999"})
    assert response.status_code == 422
    assert not ShareLink.objects.exists()


def test_permalink_shows_create_button_and_active_links(
    member_client, owner, sim_server, simulator
):
    tracked = completed(simulator, owner)
    html = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "Create public link" in html and "This answer has no public link." in html
    active = share(tracked, owner)
    revoked = share(tracked, owner, revoked_at=timezone.now())
    expired = share(tracked, owner, expires_at=timezone.now() - timedelta(minutes=1))
    html = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert f"http://testserver/s/{active.token}/" in html
    assert revoked.token not in html and expired.token not in html


def test_public_page_shows_answer_and_provenance_without_member_details(
    anon_client, owner_client, member, owner, sim_server, simulator
):
    tracked = completed(simulator, owner)
    link = share(tracked, member, expires_at=timezone.now() + timedelta(days=1))
    response = anon_client.get(f"/s/{link.token}/")
    assert response.status_code == 200
    assert response["X-Robots-Tag"].startswith("noindex")
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert tracked.request_id in html
    assert tracked.model and tracked.model in html
    assert tracked.completed_at.strftime("%Y-%m-%d %H:%M") in html
    digest = hashlib.sha256(tracked.archive.raw_json.encode()).hexdigest()[:12]
    assert f"sha256:{digest}" in html
    assert 'id="source-1"' in html and 'href="#source-1"' in html
    assert "/static/css/answer.css" in html and "/static/js/answer.js" in html
    assert "csrfmiddlewaretoken" not in html and not response.cookies
    # Signed in or not, the page names nobody and shows no key.
    for client in (anon_client, owner_client):
        html = client.get(f"/s/{link.token}/").content.decode()
        for secret in ("olivia", "mateo", "@example.com", "pplx-", "Sign out", "/settings/"):
            assert secret not in html


def test_public_page_never_calls_upstream_nor_renders(anon_client, owner, sim_server, simulator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sonarweb.tracker.archive.store import rerender_stale
    from sonarweb.tracker.models import AnswerArchive

    tracked = completed(simulator, owner)
    # A completed row that still looks due, and HTML from an older renderer.
    TrackedRequest.objects.filter(pk=tracked.pk).update(
        next_poll_at=timezone.now() - timedelta(minutes=5)
    )
    AnswerArchive.objects.filter(pk=tracked.pk).update(
        render_version=0, rendered_html='<article class="answer"><p>older copy</p></article>'
    )
    link = share(tracked, owner)
    calls = simulator.calls.count()
    with CaptureQueriesContext(connection) as queries:
        html = anon_client.get(f"/s/{link.token}/").content.decode()
    assert simulator.calls.count() == calls
    assert "older copy" in html
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    # The refresher renders it again in the background; the page then shows the new one.
    assert rerender_stale() == 1
    html = anon_client.get(f"/s/{link.token}/").content.decode()
    assert "older copy" not in html and 'id="source-1"' in html
    assert AnswerArchive.objects.get(pk=tracked.pk).render_version == RENDER_VERSION


def test_revoke_from_the_panel_makes_the_link_404_at_once(
    anon_client, member_client, owner, sim_server, simulator
):
    tracked = completed(simulator, owner)
    link = share(tracked, owner)
    assert anon_client.get(f"/s/{link.token}/").status_code == 200
    response = member_client.post(
        f"/links/{link.pk}/revoke/", {"from": "panel"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="share-panel"' in html and link.token not in html
    response = anon_client.get(f"/s/{link.token}/")
    assert response.status_code == 404
    assert response["X-Robots-Tag"].startswith("noindex")
    html = response.content.decode()
    assert "Not found" in html and "olivia" not in html and tracked.request_id not in html


def test_plain_revoke_redirects_back(member_client, owner, sim_server, simulator):
    tracked = completed(simulator, owner)
    first, second = share(tracked, owner), share(tracked, owner)
    response = member_client.post(f"/links/{first.pk}/revoke/", {"from": "panel"})
    assert response.status_code == 303 and response["Location"] == f"/r/{tracked.slug}/"
    response = member_client.post(f"/links/{second.pk}/revoke/", {"from": "https://evil.example"})
    assert response.status_code == 303 and response["Location"] == "/links/"
    first.refresh_from_db()
    revoked_at = first.revoked_at
    assert revoked_at is not None
    # Revoking twice keeps the first time.
    member_client.post(f"/links/{first.pk}/revoke/")
    first.refresh_from_db()
    assert first.revoked_at == revoked_at
    assert member_client.post("/links/999999/revoke/").status_code == 404


def test_expired_unknown_and_unfinished_links_are_404(anon_client, owner, sim_server, simulator):
    tracked = completed(simulator, owner)
    expired = share(tracked, owner, expires_at=timezone.now() - timedelta(seconds=1))
    assert anon_client.get(f"/s/{expired.token}/").status_code == 404
    assert anon_client.get("/s/not-a-token/").status_code == 404
    assert anon_client.get(f"/s/{'x' * 200}/").status_code == 404
    # A link row to an unfinished request (made outside the views) still shows nothing.
    unfinished = share(running(simulator, owner), owner)
    assert anon_client.get(f"/s/{unfinished.token}/").status_code == 404


def test_links_page_lists_statuses_and_revokes(
    member_client, anon_client, owner, member, sim_server, simulator
):
    tracked = completed(simulator, owner)
    TrackedRequest.objects.filter(pk=tracked.pk).update(title="Solar storage costs")
    active = share(tracked, member, expires_at=timezone.now() + timedelta(days=30))
    share(tracked, owner, revoked_at=timezone.now())
    share(tracked, owner, expires_at=timezone.now() - timedelta(days=1))

    response = member_client.get("/links/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("Solar storage costs") >= 3
    assert "mateo" in html and "olivia" in html
    statuses = re.findall(r'data-link-status="(\w+)"', html)
    assert sorted(statuses) == ["active", "expired", "revoked"]
    # The one active link: the confirmation form's action, the dialog form's action and hx-post.
    assert html.count('/revoke/"') == 3
    assert f'data-copy-text="http://testserver/s/{active.token}/"' in html
    assert f'hx-post="/links/{active.pk}/revoke/"' in html

    response = member_client.post(f"/links/{active.pk}/revoke/", HTTP_HX_REQUEST="true")
    row = response.content.decode()
    assert row.strip().startswith(f'<tr id="link-{active.pk}"')
    assert 'data-link-status="revoked"' in row and "/revoke/" not in row
    assert anon_client.get(f"/s/{active.token}/").status_code == 404
    assert anon_client.get("/links/").status_code == 302


def test_links_page_empty(member_client):
    assert "No public links yet." in member_client.get("/links/").content.decode()


def test_csrf_is_enforced_on_create_and_revoke(owner, member, sim_server, simulator):
    tracked = completed(simulator, owner)
    link = share(tracked, owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post(f"/r/{tracked.slug}/share/", {"expires": "never"}).status_code == 403
    assert client.post(f"/links/{link.pk}/revoke/").status_code == 403
    assert ShareLink.objects.count() == 1
    link.refresh_from_db()
    assert link.revoked_at is None

    # With the token from the page, the same posts work.
    client.get(f"/r/{tracked.slug}/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/r/{tracked.slug}/share/", {"expires": "never", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 303
    assert ShareLink.objects.count() == 2


def test_member_key_is_never_on_the_public_page(anon_client, member, sim_server, simulator):
    from sonarweb.tracker.models import ApiKey

    key = ApiKey(user=member)
    key.set_secret(MEMBER_KEY)
    key.save()
    job_id = simulator.add_job(MEMBER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=member)
    refresh_if_due(tracked)
    link = share(tracked, member)
    html = anon_client.get(f"/s/{link.token}/").content.decode()
    assert tracked.request_id in html
    assert MEMBER_KEY not in html and key.last4 not in html and "mateo" not in html


def test_public_page_hides_follow_up_controls(anon_client, owner, sim_server, simulator):
    link = share(completed(simulator, owner), owner)
    html = anon_client.get(link.get_absolute_url()).content.decode()
    assert '<body class="public">' in html
    assert 'class="related-question"' in html


def test_public_page_never_shows_the_teams_own_title(anon_client, owner, sim_server, simulator):
    tracked = completed(simulator, owner)
    internal = "Internal: for the Acme pitch, do not forward"
    TrackedRequest.objects.filter(pk=tracked.pk).update(
        title=internal, question="How do heat pumps cope with frost?"
    )
    link = share(tracked, owner)
    html = anon_client.get(link.get_absolute_url()).content.decode()
    assert internal not in html and "Acme" not in html
    assert "<h1>How do heat pumps cope with frost?</h1>" in html
    assert "<title>How do heat pumps cope with frost? · sonarweb</title>" in html
    # Without a question, the request id stands in; still never the title.
    TrackedRequest.objects.filter(pk=tracked.pk).update(question="")
    html = anon_client.get(link.get_absolute_url()).content.decode()
    assert internal not in html and f"<h1>{tracked.request_id}</h1>" in html


def test_public_views_read_the_rendered_answer_only(anon_client, owner, sim_server, simulator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tracked = completed(simulator, owner)
    link = share(tracked, owner)
    first = anon_client.get(link.get_absolute_url())
    assert first.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = anon_client.get(link.get_absolute_url())
    assert response.status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    # The stored rendering, read once; never the raw JSON nor the Markdown.
    assert sum("rendered_html" in q for q in sql) == 1
    for column in ("raw_json", "answer_text", "markdown"):
        assert not any(column in q for q in sql), column
    # The same page as the first view: the stored answer's bytes, the same content hash.
    assert response.content == first.content
    html = response.content.decode()
    assert tracked.archive.rendered_html in html
    digest = hashlib.sha256(tracked.archive.raw_json.encode()).hexdigest()[:12]
    assert f"sha256:{digest}" in html
    assert (
        response["X-Robots-Tag"].startswith("noindex") and "no-store" in response["Cache-Control"]
    )
    assert response["Referrer-Policy"] == "no-referrer"
