"""An invitation from creation by staff on /team/ to the new member's first tracked request."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import MEMBER_KEY, PASSWORD
from tests.team_helpers import make_staff

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "plum orchard lantern 73"


def test_invitation_to_first_tracked_request(page, live_server, sim_server, simulator):
    make_staff("sam")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    sign_in(page, "sam", PASSWORD)
    page.get_by_role("link", name="Team").click()
    expect(page.get_by_role("heading", name="Team")).to_be_visible()
    page.get_by_label("Email (optional)").fill("nia@example.com")
    expect(page.get_by_label("Link expires in")).to_have_value("7")
    page.get_by_role("button", name="Create invitation link").click()

    field = page.get_by_label("Invitation link")
    expect(field).to_have_value(re.compile(r"^http://[^/]+/invite/[\w-]{43}/$"))
    link = field.input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#invite-copied")).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == link
    expect(page.locator("tr", has_text="nia@example.com")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")

    page.goto(link)
    expect(page.get_by_role("heading", name="Join the team")).to_be_visible()
    page.get_by_label("Username").fill("nia")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/settings/")
    expect(page.locator(".messages")).to_contain_text("Welcome to the team, nia.")
    expect(page.locator(".signout .who")).to_have_text("nia")

    page.get_by_label("API key").fill(MEMBER_KEY)
    page.get_by_role("button", name="Save key").click()
    # A first working key leads on to the dashboard, with the next step in the message.
    page.wait_for_url("**/")
    expect(page.locator(".messages")).to_contain_text("Your API key pplx-…c3d4 works")

    job_id = simulator.add_job(MEMBER_KEY, queue_seconds=0, run_seconds=1)
    page.get_by_label("Request ID").fill(job_id)
    page.get_by_role("button", name="Track").click()
    page.wait_for_url("**/r/*/")
    facts = page.locator(".request-details .facts").first
    expect(facts).to_contain_text(job_id)
    expect(facts).to_contain_text("Added bynia")
    assert page.js_errors == []
    # The invitation is used: the link now leads nowhere.
    response = page.goto(link)
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
