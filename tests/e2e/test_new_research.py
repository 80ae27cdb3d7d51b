"""Start research from the form, land on its permalink, watch it finish without a reload."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from sonarweb.simulator.app import Simulator
from sonarweb.tracker.models import Origin, TrackedRequest
from tests.conftest import MEMBER_KEY, OWNER_KEY, PASSWORD, make_member

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, run_seconds=3)


def olivia_with_key() -> User:
    return make_member("olivia", OWNER_KEY)


def test_start_research_and_watch_it_finish(page, sim_server, simulator):
    olivia_with_key()
    sign_in(page, "olivia", PASSWORD)
    page.get_by_role("link", name="New research", exact=True).click()
    page.wait_for_url("**/new/")
    expect(page.get_by_label("Medium", exact=True)).to_be_checked()
    page.get_by_label("Question", exact=True).fill("How do heat pumps cope with very cold winters?")
    page.get_by_label("Fast", exact=True).check()

    # The Advanced section opens from the keyboard, like any <details>.
    advanced = page.locator("details.advanced")
    expect(page.get_by_label("Domains")).to_be_hidden()
    page.locator("details.advanced > summary").focus()
    page.keyboard.press("Enter")
    expect(advanced).to_have_attribute("open", "")
    page.get_by_label("Domains").fill("nature.com https://www.example.org/ -pinterest.com")
    page.get_by_label("Published after").fill("2025-06-01")
    page.get_by_label("Reasoning effort").select_option("low")
    page.get_by_role("button", name="Start research").click()
    page.wait_for_url(re.compile(r".*/r/[\w-]+/$"))

    expect(page.locator("h1")).to_have_text("How do heat pumps cope with very cold winters?")
    badge = page.locator("#status [data-status]")
    page.evaluate("window.__sameDocument = true")
    expect(badge).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("#answer article").first).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True
    assert page.js_errors == []

    tracked = TrackedRequest.objects.get()
    assert tracked.origin == Origin.STARTED and tracked.request_id.startswith("resp_")
    assert simulator.created_bodies == [
        {
            "input": "How do heat pumps cope with very cold winters?",
            "background": True,
            "preset": "fast",
            "tools": [
                {
                    "type": "web_search",
                    "filters": {
                        "search_domain_filter": [
                            "nature.com",
                            "www.example.org",
                            "-pinterest.com",
                        ],
                        "search_after_date_filter": "06/01/2025",
                    },
                }
            ],
            "reasoning": {"effort": "low"},
        }
    ]
    assert simulator.calls.count(endpoint="start") == 1


def test_a_mistake_in_advanced_shows_there_and_keeps_everything(page, sim_server, simulator):
    olivia_with_key()
    sign_in(page, "olivia", PASSWORD)
    page.goto("/new/")
    page.get_by_label("Question", exact=True).fill("Which heat pumps are quietest?")
    page.locator("details.advanced > summary").click()
    page.get_by_label("Published within").select_option("week")
    page.get_by_label("Updated before").fill("2026-01-31")
    page.get_by_role("button", name="Start research").click()

    expect(page.locator("details.advanced")).to_have_attribute("open", "")
    expect(page.get_by_text("Choose either 'Published within' or dates, not both")).to_be_visible()
    # The focus lands on the field to fix; what was typed is all still there.
    expect(page.get_by_label("Published within")).to_be_focused()
    question = page.get_by_label("Question", exact=True)
    expect(question).to_have_value("Which heat pumps are quietest?")
    expect(page.get_by_label("Updated before")).to_have_value("2026-01-31")
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 0
    # (The browser logs the 422 answer itself as a resource that failed to load.)
    assert [e for e in page.js_errors if "status of 422" not in e] == []


def test_follow_up_link_prefills_the_question(page, sim_server, simulator):
    olivia_with_key()
    sign_in(page, "olivia", PASSWORD)
    page.goto("/new/?q=What%20about%20ground-source%20heat%20pumps%3F")
    expect(page.get_by_label("Question", exact=True)).to_have_value(
        "What about ground-source heat pumps?"
    )
    assert simulator.calls.count() == 0


def test_edit_a_title_inline_and_cancel_with_escape(page, sim_server, simulator):
    user = olivia_with_key()
    tracked = TrackedRequest.objects.create(
        request_id="job-title", question="Original question", added_by=user, next_poll_at=None
    )
    sign_in(page, "olivia", PASSWORD)
    row = page.locator(f"#title-{tracked.slug}")
    page.evaluate("window.__sameDocument = true")

    page.get_by_role("link", name="Edit title").click()
    field = page.get_by_label("Title", exact=True)
    expect(field).to_be_focused()
    field.fill("Cold-climate heat pumps")
    field.press("Enter")
    expect(row.get_by_role("link", name="Cold-climate heat pumps", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Edit title")).to_be_focused()

    page.get_by_role("link", name="Edit title").click()
    page.get_by_label("Title", exact=True).fill("Not this")
    page.get_by_label("Title", exact=True).press("Escape")
    expect(row.get_by_role("link", name="Cold-climate heat pumps", exact=True)).to_be_visible()
    expect(page.locator("form.title-form")).to_have_count(0)

    assert page.evaluate("window.__sameDocument") is True
    tracked.refresh_from_db()
    assert tracked.title == "Cold-climate heat pumps"
    assert page.js_errors == []
