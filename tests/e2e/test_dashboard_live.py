"""The live dashboard: calm polling, and it tells the truth as rows finish (issue 9, 1 and 6)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.models import TrackedRequest
from tests.conftest import MEMBER_KEY, OWNER_KEY, PASSWORD, archived_request, make_member

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def count_badge_requests(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/badges/" in r.url else None)
    return seen


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_one_poll_per_interval_and_none_once_nothing_runs(
    page, live_server, sim_server, simulator, settings, viewport
):
    page.set_viewport_size(VIEWPORTS[viewport])
    owner = make_member("olivia", OWNER_KEY)
    archived_request(owner, request_id="job-finished", question="Already done")
    job = simulator.add_job(
        OWNER_KEY, queue_seconds=0, run_seconds=3600, outcome="FAILED", error_message="stopped"
    )
    running = TrackedRequest.objects.create(request_id=job, added_by=owner, question="Running")
    sign_in(page, "olivia", PASSWORD)
    requests = count_badge_requests(page)
    page.goto("/")
    expect(page.locator(f"#badge-{running.slug} [data-status]")).to_have_attribute(
        "data-status", "IN_PROGRESS"
    )
    requests.clear()
    page.wait_for_timeout(12_000)
    # One poll per SONARWEB_BADGE_POLL_SECONDS (1 s under test), however long each takes.
    assert 0 < len(requests) <= 12 / settings.SONARWEB_BADGE_POLL_SECONDS + 1, requests

    # Once nothing on the dashboard runs, the polling stops. The job ends upstream and the
    # refresher records it, as in use: writing the row here would race the refresher's own
    # write of the poll it has in flight.
    simulator.advance(3600)
    expect(page.locator(f"#badge-{running.slug} [data-status]")).to_have_attribute(
        "data-status", "FAILED"
    )
    expect(page.locator("#badge-poller[hx-get]")).to_have_count(0)
    requests.clear()
    page.wait_for_timeout(4_000)
    assert requests == []
    assert page.js_errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_counts_filters_new_rows_and_title_follow_the_truth(
    page, live_server, sim_server, simulator, viewport
):
    page.set_viewport_size(VIEWPORTS[viewport])
    owner = make_member("olivia", OWNER_KEY)
    teammate = make_member("mateo", MEMBER_KEY)
    job = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=6)
    soon = TrackedRequest.objects.create(request_id=job, added_by=owner, question="Soon done")
    slow = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=3600)
    TrackedRequest.objects.create(request_id=slow, added_by=owner, question="Takes long")
    sign_in(page, "olivia", PASSWORD)
    page.goto("/?status=IN_PROGRESS")
    expect(page.locator(f"#badge-{soon.slug} [data-status]")).to_have_attribute(
        "data-status", "IN_PROGRESS"
    )
    title = page.title()
    counts = page.locator("#status-counts")
    expect(counts.locator('[data-count="IN_PROGRESS"]')).to_have_text("2")

    # A teammate tracks another running job: it appears at the top within a poll.
    other = simulator.add_job(MEMBER_KEY, queue_seconds=0, run_seconds=3600)
    added = TrackedRequest.objects.create(request_id=other, added_by=teammate, question="New one")
    new_badge = page.locator(f"#badge-{added.slug} [data-status]")
    expect(new_badge).to_have_attribute("data-status", "IN_PROGRESS")
    expect(page.locator("#request-rows tr").first).to_contain_text("New one")
    expect(counts.locator('[data-count="IN_PROGRESS"]')).to_have_text("3")

    # The first job finishes: its badge, the counts, the filter mark and the tab title say so.
    badge = page.locator(f"#badge-{soon.slug}")
    expect(badge.locator("[data-status]")).to_have_attribute(
        "data-status", "COMPLETED", timeout=30_000
    )
    expect(badge).to_contain_text("no longer in progress")
    expect(counts.locator('[data-count="COMPLETED"]')).to_have_text("1")
    expect(counts.locator('[data-count="IN_PROGRESS"]')).to_have_text("2")
    expect(page).to_have_title(f"✓ 1 finished · {title}")
    assert page.js_errors == []


def test_an_idle_dashboard_makes_no_request(page, live_server, sim_server):
    owner = make_member("olivia", OWNER_KEY)
    archived_request(owner, request_id="job-finished", question="Already done")
    sign_in(page, "olivia", PASSWORD)
    requests = count_badge_requests(page)
    page.goto("/")
    expect(page.locator("#badge-poller")).to_be_attached()
    started = time.monotonic()
    page.wait_for_timeout(3_000)
    assert requests == [] and time.monotonic() - started >= 3
