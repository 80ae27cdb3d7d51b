"""Watching a request finish: tab title, favicon and a browser notification."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.models import TrackedRequest
from tests.conftest import OWNER_KEY, PASSWORD, make_member

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records notifications instead of showing them; permission still comes from the browser.
RECORD_NOTIFICATIONS = """
window.__notes = [];
const RealNotification = window.Notification;
function RecordingNotification(title, options) {
  window.__notes.push({ title: title, body: (options || {}).body, icon: (options || {}).icon });
  this.close = function () {};
}
Object.defineProperty(RecordingNotification, "permission", {
  get: function () { return RealNotification.permission; },
});
RecordingNotification.requestPermission = function (callback) {
  return RealNotification.requestPermission(callback);
};
window.Notification = RecordingNotification;
"""


def watch(page, simulator, **job) -> TrackedRequest:
    user = make_member("olivia", OWNER_KEY)
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=4, **job)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user)
    page.add_init_script(RECORD_NOTIFICATIONS)
    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    expect(page.locator("#status [data-status]")).to_have_attribute("data-status", "IN_PROGRESS")
    return tracked


def favicon(page) -> str:
    return page.locator('link[rel="icon"]').get_attribute("href") or ""


def test_finished_job_changes_title_favicon_and_notifies(page, live_server, sim_server, simulator):
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    watch(page, simulator)
    title = page.title()
    assert not title.startswith("✓") and "favicon.svg" in favicon(page)
    # Permission is already granted: nothing to ask, the page says what will happen.
    expect(page.locator("#notify-button")).to_be_hidden()
    expect(page.locator("#notify-state")).to_contain_text("notification when it finishes")

    expect(page.locator("#status [data-status]")).to_have_attribute("data-status", "COMPLETED")
    expect(page).to_have_title(f"✓ Completed · {title}")
    assert re.search(r"favicon-done(\.[0-9a-f]+)?\.svg$", favicon(page))
    notes = page.evaluate("window.__notes")
    assert len(notes) == 1
    assert notes[0]["title"] == f"✓ Completed · {title}"
    assert "favicon-done" in notes[0]["icon"]
    expect(page.locator("#notify-state")).to_have_text("")
    assert page.js_errors == []


def test_failed_job_shows_failure_and_asks_permission_first(
    page, live_server, sim_server, simulator
):
    watch(page, simulator, outcome="FAILED", error_message="Out of budget.")
    title = page.title()
    button = page.locator("#notify-button")
    assert page.evaluate("Notification.permission") == "default"
    expect(button).to_be_visible()
    expect(button).to_have_text("Notify me when it finishes")
    expect(page.locator("#status [data-status]")).to_have_attribute("data-status", "FAILED")
    expect(page).to_have_title(f"✗ Failed · {title}")
    assert "favicon-failed" in favicon(page)
    expect(button).to_be_hidden()
    # Without permission no notification is made.
    assert page.evaluate("window.__notes") == []
    assert page.js_errors == []


def test_finished_page_opened_later_announces_nothing(page, live_server, sim_server, simulator):
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    watch(page, simulator)
    expect(page.locator("#status [data-status]")).to_have_attribute("data-status", "COMPLETED")
    page.reload()
    assert not page.title().startswith("✓")
    assert page.locator("#notify-button").count() == 0
    assert page.evaluate("window.__notes") == []


def test_screen_readers_hear_the_finish(page, live_server, sim_server, simulator):
    watch(page, simulator)
    announcer = page.locator("#status-announcer")
    # A live region outside #status, which every poll replaces.
    assert page.locator("#status #status-announcer").count() == 0
    assert announcer.get_attribute("role") == "status"
    expect(page.locator("#status [data-status]")).to_have_attribute("data-status", "COMPLETED")
    expect(announcer).to_have_text("Status: Completed")
    assert page.js_errors == []
