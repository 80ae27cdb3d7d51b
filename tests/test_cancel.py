"""Cancelling a running Agent run: who may, the confirmation step, one upstream call, what
the page says while upstream stops the run, and the partial answer it keeps.

Real HTTP against the simulator: a cancel is acknowledged ``cancelling``, the run's next two
GETs still show ``in_progress``, then it is ``cancelled`` with its partial output.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sonarweb.accounts.models import AuditEvent
from sonarweb.tracker.models import ApiKey, Origin, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY, make_member, poll

pytestmark = pytest.mark.django_db

CANCEL_BUTTON = "Cancel run…"


def started_run(simulator, owner, **run) -> TrackedRequest:
    """A run started here with the medium preset, polled once: in progress upstream."""
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


def cancel_calls(simulator, tracked: TrackedRequest) -> int:
    return simulator.calls.count(endpoint="cancel", job_id=tracked.request_id)


def poll_now(tracked: TrackedRequest) -> TrackedRequest:
    """The refresher's next poll of the row, whenever it is due."""
    TrackedRequest.objects.filter(pk=tracked.pk).update(next_poll_at=timezone.now())
    tracked.refresh_from_db()
    return poll(tracked)


def messages_of(html: str) -> str:
    found = re.search(r'<ul class="messages"[^>]*>(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


def status_block(html: str) -> str:
    return re.search(r'<div id="status".*?<dl class="facts timing">', html, re.S).group(0)


@pytest.fixture
def staff_client(db) -> Client:
    staff = make_member("sofia", MEMBER_KEY)
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(staff)
    return client


def test_adder_cancels_and_the_run_ends_cancelled_with_its_partial_answer(
    owner_client, owner, sim_server, simulator
):
    tracked = started_run(simulator, owner)
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert CANCEL_BUTTON in page
    assert f'action="/r/{tracked.slug}/cancel/" data-opens-dialog="cancel-dialog"' in page
    assert 'id="cancel-dialog"' in page and "Keep it running" in page
    # While it runs, the stored model is the preset's name.
    assert "<dt>Model</dt><dd>preset medium</dd>" in page

    before = timezone.now()
    response = owner_client.post(f"/r/{tracked.slug}/cancel/")
    assert response.status_code == 303 and response["Location"] == f"/r/{tracked.slug}/"
    assert cancel_calls(simulator, tracked) == 1
    tracked.refresh_from_db()
    assert tracked.cancel_requested_at is not None and tracked.cancel_requested_at >= before
    # The refresher is asked to look soon (request_early_poll).
    assert tracked.next_poll_at <= timezone.now() + timedelta(seconds=3)

    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "Perplexity was asked to cancel this run." in messages_of(page)
    block = status_block(page)
    assert "Cancelling…" in block and "data-cancelling" in block
    assert 'hx-get="/r/' in block, "still polled until upstream has stopped the run"
    assert CANCEL_BUTTON not in page

    # Upstream's GETs show in_progress a little longer; the page keeps saying Cancelling.
    seen = []
    for _ in range(6):
        tracked = poll_now(tracked)
        seen.append(tracked.status)
        if tracked.is_finished:
            break
        html = owner_client.get(f"/r/{tracked.slug}/status/", HTTP_HX_REQUEST="true")
        assert "Cancelling…" in html.content.decode()
    assert seen == ["IN_PROGRESS", "IN_PROGRESS", "CANCELLED"]
    assert cancel_calls(simulator, tracked) == 1

    assert tracked.has_answer and not tracked.is_polling
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    block = status_block(page)
    assert 'data-status="CANCELLED"' in block and "Cancelling…" not in block
    assert "hx-trigger" not in block and "watch.js" not in page
    assert "Whatever the research had written by then is kept." in block
    # The partial answer, with the renderer's sentence saying why it stops early.
    assert '<p class="answer-note">The research was cancelled' in page
    assert 'id="source-1"' in page
    # It can be read elsewhere too: downloads work for a cancelled run.
    assert owner_client.get(f"/r/{tracked.slug}/answer.md").status_code == 200
    assert owner_client.get(f"/r/{tracked.slug}/answer.json").status_code == 200


def test_staff_cancel_a_members_run_with_the_adders_key(staff_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    assert CANCEL_BUTTON in staff_client.get(f"/r/{tracked.slug}/").content.decode()
    response = staff_client.post(f"/r/{tracked.slug}/cancel/")
    assert response.status_code == 303
    calls = [c for c in simulator.calls.all() if c.endpoint == "cancel"]
    # The adder's key owns the run upstream: the staff member's own key would get a 404.
    assert [c.key_last4 for c in calls] == [OWNER_KEY[-4:]]
    assert [c.status for c in calls] == [200]
    tracked.refresh_from_db()
    assert tracked.is_cancelling


def test_another_member_sees_no_cancel_and_is_refused(member_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    page = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert CANCEL_BUTTON not in page and 'id="cancel-dialog"' not in page
    assert member_client.get(f"/r/{tracked.slug}/cancel/").status_code == 403
    assert member_client.post(f"/r/{tracked.slug}/cancel/").status_code == 403
    assert cancel_calls(simulator, tracked) == 0
    tracked.refresh_from_db()
    assert tracked.cancel_requested_at is None


def test_confirmation_page_without_javascript_and_csrf(owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get(f"/r/{tracked.slug}/cancel/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Cancel this research run?" in html and "Cold-climate heat pumps" in html
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', html, re.S)
    assert form.group(1) == f"/r/{tracked.slug}/cancel/"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(2)).group(1)
    assert f'href="/r/{tracked.slug}/"' in html, "a way back that cancels nothing"
    assert cancel_calls(simulator, tracked) == 0, "the confirmation page sends nothing"

    # Without the token the post is refused, and nothing is sent upstream.
    assert client.post(f"/r/{tracked.slug}/cancel/").status_code == 403
    assert cancel_calls(simulator, tracked) == 0
    response = client.post(f"/r/{tracked.slug}/cancel/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 303
    assert cancel_calls(simulator, tracked) == 1


def test_a_second_post_sends_nothing_more(owner_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    first = owner_client.post(f"/r/{tracked.slug}/cancel/")
    second = owner_client.post(f"/r/{tracked.slug}/cancel/", follow=True)
    assert first.status_code == 303
    assert cancel_calls(simulator, tracked) == 1
    assert "already asked for" in messages_of(second.content.decode())
    # The confirmation page is not offered again either.
    again = owner_client.get(f"/r/{tracked.slug}/cancel/", follow=True).content.decode()
    assert "already asked for" in messages_of(again)
    assert cancel_calls(simulator, tracked) == 1


def test_the_claim_lets_one_of_two_racing_posts_through(owner, sim_server, simulator):
    from sonarweb.tracker.views.cancel import _claim

    tracked = started_run(simulator, owner)
    assert _claim(tracked) is not None
    assert _claim(tracked) is None


def test_a_run_that_had_already_finished(owner_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    # It completes upstream before the refresher has seen it: the page still says running.
    simulator.advance(3700)
    TrackedRequest.objects.filter(pk=tracked.pk).update(
        next_poll_at=timezone.now() + timedelta(minutes=5)
    )
    response = owner_client.post(f"/r/{tracked.slug}/cancel/", follow=True)
    html = response.content.decode()
    assert "This run had already finished; the page shows its final state." in messages_of(html)
    calls = [c for c in simulator.calls.all() if c.endpoint == "cancel"]
    assert [c.status for c in calls] == [400]
    tracked.refresh_from_db()
    assert tracked.cancel_requested_at is None, "nothing is being cancelled"
    assert tracked.next_poll_at <= timezone.now() + timedelta(seconds=3), "polled early"
    assert "Cancelling…" not in status_block(html)
    tracked = poll_now(tracked)
    assert tracked.status == "COMPLETED"
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert 'data-status="COMPLETED"' in page and CANCEL_BUTTON not in page
    # Once completed, the model is the resolved one, shown as it is.
    assert "<dt>Model</dt><dd>openai/gpt-6-luna</dd>" in page
    # A finished run is not sent a cancel again.
    owner_client.post(f"/r/{tracked.slug}/cancel/")
    assert cancel_calls(simulator, tracked) == 1


def test_a_rejected_key_is_marked_and_nothing_recorded(owner_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    simulator.revoke_key(OWNER_KEY)
    html = owner_client.post(f"/r/{tracked.slug}/cancel/", follow=True).content.decode()
    assert "Perplexity rejected your API key (401)" in messages_of(html)
    assert ApiKey.objects.get(user=owner).is_invalid
    tracked.refresh_from_db()
    assert tracked.cancel_requested_at is None
    assert cancel_calls(simulator, tracked) == 1


def test_rate_limited_says_when_and_a_later_try_works(owner_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    simulator.inject("rate_limit", endpoint="cancel", retry_after=7)
    html = owner_client.post(f"/r/{tracked.slug}/cancel/", follow=True).content.decode()
    assert "rate-limiting your API key" in html and "Try again in 7 seconds." in html
    tracked.refresh_from_db()
    assert tracked.cancel_requested_at is None
    assert CANCEL_BUTTON in html, "still offered: nothing was recorded"
    owner_client.post(f"/r/{tracked.slug}/cancel/")
    tracked.refresh_from_db()
    assert tracked.is_cancelling
    assert [c.status for c in simulator.calls.all() if c.endpoint == "cancel"] == [429, 200]


def test_a_timeout_records_nothing(owner_client, owner, sim_server, simulator, settings):
    settings.PERPLEXITY_INTERACTIVE_TIMEOUT = 1.0
    tracked = started_run(simulator, owner)
    simulator.inject("slow", endpoint="cancel", delay=3)
    html = owner_client.post(f"/r/{tracked.slug}/cancel/", follow=True).content.decode()
    sentence = messages_of(html)
    assert "within 1 s" in sentence and "The cancel may not have reached Perplexity" in sentence
    tracked.refresh_from_db()
    assert tracked.cancel_requested_at is None


def test_an_adder_without_a_key_is_named(staff_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    ApiKey.objects.filter(user=owner).delete()
    html = staff_client.post(f"/r/{tracked.slug}/cancel/", follow=True).content.decode()
    assert "olivia&#x27;s API key is no longer saved" in messages_of(html)
    assert cancel_calls(simulator, tracked) == 0
    tracked.refresh_from_db()
    assert tracked.cancel_requested_at is None


def test_a_sonar_job_offers_no_cancel(owner_client, owner, sim_server, simulator):
    job = simulator.add_job(OWNER_KEY)
    tracked = poll(TrackedRequest.objects.create(request_id=job, added_by=owner))
    assert tracked.status == "IN_PROGRESS"
    assert CANCEL_BUTTON not in owner_client.get(f"/r/{tracked.slug}/").content.decode()
    html = owner_client.post(f"/r/{tracked.slug}/cancel/", follow=True).content.decode()
    assert "Only Agent API runs can be cancelled" in messages_of(html)
    assert simulator.calls.count(endpoint="cancel") == 0


def test_a_poll_removes_cancel_once_it_is_no_longer_offered(
    owner_client, member_client, owner, sim_server, simulator
):
    tracked = started_run(simulator, owner)
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    # Cancel sits outside the polled block, whose poll says that it is shown.
    assert f'hx-get="/r/{tracked.slug}/status/?cancel=offered"' in page
    assert page.index('id="cancel-control"') > page.index("</dl>", page.index('id="status"'))
    status = f"/r/{tracked.slug}/status/?cancel=offered"
    still = owner_client.get(status, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="cancel-control"' not in still
    # Someone cancels it (here the adder, in another tab): the next poll removes the button.
    owner_client.post(f"/r/{tracked.slug}/cancel/")
    gone = owner_client.get(status, HTTP_HX_REQUEST="true").content.decode()
    assert '<div id="cancel-control" hx-swap-oob="delete"></div>' in gone
    # Its own poll no longer says Cancel is shown, so it asks for no removal again.
    assert f'hx-get="/r/{tracked.slug}/status/"' in gone and "cancel=offered" not in gone
    # A member never offered Cancel polls without it.
    page = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "cancel=offered" not in page


def test_the_dashboard_badge_says_cancelling(owner_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    owner_client.post(f"/r/{tracked.slug}/cancel/")
    html = owner_client.get("/").content.decode()
    badge = re.search(rf'<span id="badge-{tracked.slug}".*?</span>\s*</span>', html, re.S).group(0)
    assert "Cancelling…" in badge and 'data-status="IN_PROGRESS"' in badge
    poller = re.search(r'<div id="badge-poller"[^>]*>', html).group(0)
    assert f"s={tracked.slug}.CANCELLING" in poller
    # A poll from a page that still showed it running sends the new badge.
    batch = owner_client.get(f"/badges/?s={tracked.slug}.IN_PROGRESS", HTTP_HX_REQUEST="true")
    assert "Cancelling…" in batch.content.decode()


def test_a_cancel_is_in_the_audit_trail(owner_client, owner, sim_server, simulator):
    tracked = started_run(simulator, owner)
    owner_client.post(f"/r/{tracked.slug}/cancel/")
    event = AuditEvent.objects.get(tracked=tracked)
    assert event.action == "cancelled" and event.actor == owner
