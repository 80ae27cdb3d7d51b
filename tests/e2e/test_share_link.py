"""A member shares a completed answer; a signed-out browser reads it until it is revoked."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.models import TrackedRequest
from sonarweb.tracker.polling import refresh_if_due
from tests.conftest import OWNER_KEY, PASSWORD, make_member

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_read_signed_out_and_revoke(page, browser, sim_server, simulator):
    user = make_member("olivia", OWNER_KEY)
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user)
    refresh_if_due(tracked)

    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Link expires").select_option("7")
    page.get_by_role("button", name="Create public link").click()
    url_field = page.locator("#share-panel input.share-url")
    expect(url_field).to_be_visible()
    token = tracked.share_links.get().token
    expect(url_field).to_have_value(f"{page.url.split('/r/')[0]}/s/{token}/")
    expect(page.locator("#share-panel")).to_contain_text("expires")
    # htmx swapped the panel in place: no full page load.
    assert page.evaluate("window.__sameDocument") is True
    public_url = url_field.input_value()

    visitor = browser.new_context()
    try:
        public = visitor.new_page()
        errors: list[str] = []
        public.on("pageerror", lambda exc: errors.append(str(exc)))
        public.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        response = public.goto(public_url)
        assert response.status == 200
        expect(public.locator("#answer h2").first).to_be_visible()
        expect(public.locator(".provenance")).to_contain_text(job_id)
        expect(public.locator("body")).not_to_contain_text("olivia")
        expect(public.get_by_role("button", name="Sign out")).to_have_count(0)
        # answer.js runs on the public page: a citation marker shows its source card.
        public.locator("a.cite").first.focus()
        expect(public.locator("#cite-card")).to_be_visible()
        assert errors == []

        page.get_by_role("button", name="Revoke").click()
        expect(page.locator("#share-panel")).to_contain_text("This answer has no public link.")
        assert public.goto(public_url).status == 404
        expect(public.get_by_role("heading", name="Not found")).to_be_visible()
    finally:
        visitor.close()
    assert page.js_errors == []
