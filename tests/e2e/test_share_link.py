"""A member shares a completed answer; a signed-out browser reads it until it is revoked."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.following.polling import refresh_if_due
from sonarweb.tracker.models import TrackedRequest
from tests.conftest import OWNER_KEY, PASSWORD, make_member

from .conftest import open_menu, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_read_signed_out_and_revoke(page, browser, sim_server, simulator):
    tracked = completed_page(page, simulator)
    page.evaluate("window.__sameDocument = true")
    open_menu(page, "Share")
    page.get_by_label("Link expires").select_option("7")
    page.get_by_role("button", name="Create public link").click()
    url_field = page.locator("#share-panel textarea.share-url")
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
        expect(public.locator(".provenance")).to_contain_text(tracked.request_id)
        expect(public.locator("body")).not_to_contain_text("olivia")
        expect(public.get_by_role("button", name="Sign out")).to_have_count(0)
        # answer.js runs on the public page: a citation marker shows its source card.
        public.locator("a.cite").first.focus()
        expect(public.locator("#cite-card")).to_be_visible()
        assert errors == []

        open_menu(page, "Share")
        page.get_by_role("button", name="Revoke public link 1").click()
        page.get_by_role("dialog").get_by_role("button", name="Revoke link").click()
        expect(page.locator("#share-panel")).to_contain_text("This answer has no public link.")
        assert public.goto(public_url).status == 404
        expect(public.get_by_role("heading", name="Not found")).to_be_visible()
    finally:
        visitor.close()
    assert page.js_errors == []


def completed_page(page, simulator) -> TrackedRequest:
    user = make_member("olivia", OWNER_KEY)
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user)
    refresh_if_due(tracked)
    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    open_menu(page, "Share")
    return tracked


def unexpected(errors: list[str]) -> list[str]:
    # The browser and htmx log the refused request itself; nothing else may fail.
    return [e for e in errors if "403" not in e and "Response Status Error" not in e]


def test_a_refused_share_post_says_so(page, sim_server, simulator):
    tracked = completed_page(page, simulator)
    # The CSRF cookie is gone (cleared, expired): Django refuses the post with 403.
    page.context.clear_cookies(name="csrftoken")
    page.get_by_role("button", name="Create public link").click()
    alert = page.locator("#request-error")
    expect(alert).to_have_text(re.compile(r"That did not work \(HTTP 403\)\. Reload the page"))
    expect(alert).to_have_attribute("role", "alert")
    assert not tracked.share_links.exists()
    # The panel is left as it was, and the sentence can be dismissed.
    expect(page.locator("#share-panel")).to_contain_text("This answer has no public link.")
    alert.get_by_role("button", name="Dismiss").click()
    expect(alert).to_have_text("")
    assert unexpected(page.js_errors) == []


def test_a_422_answer_is_swapped_in_with_its_sentence(page, sim_server, simulator):
    tracked = completed_page(page, simulator)
    page.evaluate("document.querySelector('#share-expires option[value=\"7\"]').value = '9999'")
    page.get_by_label("Link expires").select_option("9999")
    page.get_by_role("button", name="Create public link").click()
    expect(page.locator("#share-panel .form-error")).to_have_text("Choose when the link expires.")
    expect(page.locator("#request-error")).to_have_text("")
    assert not tracked.share_links.exists()


def test_an_unreachable_server_is_a_sentence(page, sim_server, simulator):
    completed_page(page, simulator)
    page.route("**/share/", lambda route: route.abort())
    page.get_by_role("button", name="Create public link").click()
    expect(page.locator("#request-error")).to_contain_text("The server could not be reached.")
