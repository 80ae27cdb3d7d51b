"""Sign in, save a key, paste a running job's id, watch it finish without a reload."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from tests.conftest import OWNER_KEY, PASSWORD

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_paste_watch_and_read(page, sim_server, simulator):
    User.objects.create_user("olivia", "olivia@example.com", PASSWORD)
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=1, run_seconds=5)

    sign_in(page, "olivia", PASSWORD)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("API key").fill(OWNER_KEY)
    page.get_by_role("button", name="Save key").click()
    # A first working key leads on to the dashboard, where a request id is pasted.
    page.wait_for_url("**/")
    expect(page.locator(".messages")).to_contain_text("Your API key pplx-…a1b2 works")
    expect(page.locator("body")).not_to_contain_text(OWNER_KEY)

    page.get_by_label("Request ID").fill(f"  {job_id} ")
    page.get_by_role("button", name="Track").click()
    page.wait_for_url("**/r/*/")

    badge = page.locator("#status [data-status]")
    expect(badge).to_have_attribute("data-status", re.compile("PENDING|CREATED|IN_PROGRESS"))
    page.evaluate("window.__sameDocument = true")
    expect(badge).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("#answer .answer-body, #answer article, #answer h2").first).to_be_visible()
    expect(page.locator('#answer a[href="#source-1"]').first).to_be_attached()
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#status[hx-trigger]").count() == 0
    assert page.js_errors == []
