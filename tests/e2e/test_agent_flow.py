"""The issue's acceptance flow, with the Sonar API retired (the simulator's default).

A new member saves a key (checked with the Agent API's model list), starts research, watches
it finish without a reload, cancels another run, and still reads a Sonar answer archived
before the retirement, which nothing asks Perplexity about again.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from sonarweb.simulator.app import SONAR_ENDPOINTS, SONAR_ROOTS, Simulator
from sonarweb.simulator.demo import sonar_archive_samples
from sonarweb.tracker.models import Origin, TrackedRequest
from tests.conftest import OWNER_KEY, PASSWORD, archived_request, make_member

from .conftest import assert_accessible, assert_fits, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_KEY = "pplx-newmember0000000000000e5f6"
QUESTION = "How do heat pumps cope with very cold winters?"


@pytest.fixture
def simulator() -> Simulator:
    """Sonar retired (the default). A run is queued for two seconds, then runs until the test
    moves the simulator's clock on."""
    return Simulator(keys=[OWNER_KEY, NEW_KEY], queue_seconds=2, run_seconds=3600)


def assert_no_sonar_call(simulator: Simulator) -> None:
    calls = simulator.calls.all()
    sonar = [c for c in calls if c.endpoint in SONAR_ENDPOINTS or c.path.startswith(SONAR_ROOTS)]
    assert sonar == [], sonar


def mark_document(page) -> None:
    """A property that only survives as long as the page is not loaded again."""
    page.evaluate("window.__sameDocument = true")


def assert_same_document(page) -> None:
    assert page.evaluate("window.__sameDocument") is True, "the page was loaded again"


def follow_first_citation(page) -> None:
    """A citation marker in the answer leads to its source card."""
    marker = page.locator("#answer a.cite").first
    href = marker.get_attribute("href")
    assert href and re.fullmatch(r"#source-\d+", href), href
    card = page.locator(f"#answer li.source-card{href}")
    expect(card).to_be_attached()
    marker.click()
    expect(page).to_have_url(re.compile(rf"{href}$"))
    expect(card).to_be_in_viewport()
    assert page.evaluate("document.querySelector(':target').id") == href.removeprefix("#")


@pytest.mark.parametrize(("device", "scheme"), [("desktop", "light"), ("phone", "dark")])
def test_new_member_saves_a_key_starts_research_and_watches_it_finish(
    open_context, sim_server, simulator, device, scheme
):
    make_member("nadia", None)
    page = open_context(device, scheme)
    sign_in(page, "nadia", PASSWORD)

    # 1. The key is saved and checked with the Agent API's model list, never a Sonar path.
    page.goto("/settings/")
    page.get_by_label("API key").fill(NEW_KEY)
    page.get_by_role("button", name="Save key").click()
    # A first working key leads on to the dashboard, with the next step in the message.
    page.wait_for_url("**/")
    expect(page.locator(".messages")).to_contain_text("Your API key pplx-…e5f6 works")
    expect(page.locator("body")).not_to_contain_text(NEW_KEY)
    assert [c.endpoint for c in simulator.calls.all()] == ["models"]
    assert simulator.calls.all()[0].path == "/v1/models"

    # 2. New research with the default preset; exactly one create, as the contract wants it.
    page.goto("/new/")
    expect(page.get_by_label("Medium", exact=True)).to_be_checked()
    page.get_by_label("Question", exact=True).fill(QUESTION)
    page.get_by_role("button", name="Start research").click()
    page.wait_for_url(re.compile(r".*/r/[\w-]+/$"))
    expect(page.locator("h1")).to_have_text(QUESTION)
    assert simulator.created_bodies == [{"input": QUESTION, "background": True, "preset": "medium"}]
    assert simulator.calls.count(endpoint="start") == 1
    tracked = TrackedRequest.objects.get()
    assert tracked.origin == Origin.STARTED and tracked.request_id.startswith("resp_")

    # 3. Queued, then in progress, then completed, all without a reload.
    mark_document(page)
    badge = page.locator("#status [data-status]")
    expect(badge).to_have_attribute("data-status", re.compile("^(PENDING|CREATED|IN_PROGRESS)$"))
    expect(badge).to_have_attribute("data-status", "IN_PROGRESS")
    expect(page.locator("#answer")).to_contain_text("The answer appears here")
    simulator.advance(3600)
    expect(badge).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("#status-announcer")).to_contain_text("Completed")
    expect(page.locator("#status[hx-get]")).to_have_count(0)
    expect(page.locator("#answer li.source-card").first).to_be_visible()
    assert page.locator("#answer a.cite").count() > 0
    follow_first_citation(page)
    assert_same_document(page)

    assert_accessible(page, f"a completed run ({device}, {scheme})")
    assert_fits(page, f"a completed run ({device}, {scheme})")
    assert simulator.calls.count(endpoint="start") == 1
    assert_no_sonar_call(simulator)
    assert page.js_errors == []


def test_cancel_a_running_run_and_watch_it_stop(page, sim_server, simulator):
    make_member("nadia", NEW_KEY)
    run_id = simulator.add_run(NEW_KEY, run_seconds=3600)
    sign_in(page, "nadia", PASSWORD)

    # Tracked by pasting its id on the dashboard.
    page.get_by_label("Request ID").fill(run_id)
    page.get_by_role("button", name="Track").click()
    page.wait_for_url(re.compile(r".*/r/[\w-]+/$"))
    tracked = TrackedRequest.objects.get(request_id=run_id)
    badge = page.locator("#status [data-status]")
    expect(badge).to_have_attribute("data-status", "IN_PROGRESS")
    assert_accessible(page, "a running run")

    page.get_by_role("button", name="Cancel run…").click()
    expect(page.locator("#cancel-dialog")).to_be_visible()
    page.get_by_role("button", name="Cancel the run").click()
    page.wait_for_url(f"**/r/{tracked.slug}/")
    expect(page.locator(".messages")).to_contain_text("Perplexity was asked to cancel this run.")

    # Upstream shows it in progress for two more polls: the page says Cancelling, then
    # Cancelled, without a reload.
    mark_document(page)
    expect(badge).to_have_text("Cancelling…")
    expect(page.get_by_role("button", name="Cancel run…")).to_have_count(0)
    expect(badge).to_have_attribute("data-status", "CANCELLED")
    expect(page.locator("#status-announcer")).to_have_text("Status: Cancelled")
    expect(page.locator("#status[hx-get]")).to_have_count(0)
    assert_same_document(page)
    assert simulator.calls.count(endpoint="cancel") == 1
    assert simulator.calls.count(endpoint="cancel", job_id=run_id) == 1
    assert simulator.run_status(run_id) == "cancelled"
    assert_accessible(page, "a cancelled run")
    assert_fits(page, "a cancelled run")
    assert_no_sonar_call(simulator)
    assert page.js_errors == []


def test_a_sonar_answer_archived_before_the_retirement_still_reads(page, sim_server, simulator):
    member = make_member("nadia", NEW_KEY)
    job_id, question, raw_text = sonar_archive_samples(image_base=sim_server.url)[1]
    tracked = archived_request(member, json.loads(raw_text), raw_text=raw_text, question=question)
    assert tracked.status == "COMPLETED" and tracked.next_poll_at is None

    sign_in(page, "nadia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    mark_document(page)
    expect(page.locator("#status [data-status]")).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("#answer .answer-body")).to_be_visible()
    expect(page.locator("#answer .answer-body")).not_to_be_empty()
    expect(page.get_by_role("button", name="Cancel run…")).to_have_count(0)
    follow_first_citation(page)
    assert_same_document(page)
    assert_accessible(page, "an archived Sonar answer")

    # Nothing asked Perplexity about it: no Sonar path, no call naming it at all.
    assert simulator.calls.count(job_id=job_id) == 0
    assert_no_sonar_call(simulator)
    assert page.js_errors == []
