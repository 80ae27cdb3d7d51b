"""Every page and state, signed in and public, on a desktop in light and on a phone in dark:
axe finds no serious or critical violation, and no page is wider than the screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.following.polling import refresh_if_due
from sonarweb.tracker.models import ShareLink, TrackedRequest
from tests.conftest import OWNER_KEY, PASSWORD, make_member

from .conftest import assert_accessible, assert_fits, assert_focus_ring_visible, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OFFSITE = re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])")
UUID = "5b0c8f7e-2d41-4c3a-9e8f-0a1b2c3d4e5f"


def team_requests(simulator, user) -> dict[str, TrackedRequest]:
    """A long completed answer (with a public link), a running job and a failed one."""
    done_id = simulator.add_job(
        OWNER_KEY,
        question="How do heat pumps cope with very cold winters?",
        queue_seconds=0,
        run_seconds=0,
        words=2500,
        sources=12,
        images=5,
    )
    done = TrackedRequest.objects.create(
        request_id=done_id, added_by=user, question="How do heat pumps cope with very cold winters?"
    )
    refresh_if_due(done)
    failed_id = simulator.add_job(
        OWNER_KEY, queue_seconds=0, run_seconds=0, outcome="FAILED", error_message="Out of time."
    )
    failed = TrackedRequest.objects.create(request_id=failed_id, added_by=user)
    refresh_if_due(failed)
    running_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=3600)
    running = TrackedRequest.objects.create(request_id=running_id, added_by=user)
    ShareLink.objects.create(tracked=done, created_by=user)
    return {"done": done, "failed": failed, "running": running}


@pytest.mark.parametrize(("device", "scheme"), [("desktop", "light"), ("phone", "dark")])
def test_every_page_and_state(open_context, sim_server, simulator, device, scheme):
    page = open_context(device, scheme)
    page.route(OFFSITE, lambda route: route.abort())

    def check(state: str) -> None:
        assert_accessible(page, f"{state} ({device}, {scheme})")
        assert_fits(page, state)

    olivia = make_member("olivia", OWNER_KEY)
    olivia.is_staff = True
    olivia.save(update_fields=["is_staff"])
    page.goto("/accounts/login/")
    check("login")
    sign_in(page, "olivia", PASSWORD)
    expect(page.get_by_text("No requests are tracked yet")).to_be_visible()
    check("dashboard, empty")

    page.keyboard.press("Tab")  # keyboard mode, so :focus-visible applies from here on
    assert_focus_ring_visible(page, page.get_by_role("link", name="start new research"), "link")
    assert_focus_ring_visible(page, page.get_by_label("Request ID"), "field")

    # Every nav link is on screen: the nav wraps on a phone instead of hiding its end.
    for link in page.locator("nav[aria-label='Main'] a").all():
        expect(link).to_be_in_viewport()

    # A failed submit opens on the field to fix.
    field = page.get_by_label("Request ID")
    field.fill("not an id!")
    page.get_by_role("button", name="Track").click()
    expect(page.locator(".form-error")).to_contain_text("no spaces")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    check("dashboard, failed submit")

    # A URL pasted with the id in its query string tracks that id, not the page's name.
    simulator.add_job(OWNER_KEY, job_id=UUID, queue_seconds=0, run_seconds=3600)
    field.fill(f"https://www.perplexity.ai/whatever?id={UUID}")
    page.get_by_role("button", name="Track").click()
    expect(page.locator(".request-details .mono").first).to_have_text(UUID)

    requests = team_requests(simulator, olivia)
    page.goto("/")
    rows = page.locator("table.requests tbody tr")
    expect(rows).to_have_count(4)
    filters = page.get_by_label("Search")
    if device == "phone":
        # Rows are cards, and the filters wait behind a toggle.
        assert rows.first.evaluate("r => getComputedStyle(r).display") == "flex"
        expect(filters).to_be_hidden()
        page.locator(".filter-toggle > summary").click()
    expect(filters).to_be_visible()
    check("dashboard with rows")

    done = requests["done"]
    response = page.goto(f"/r/{done.slug}/")
    assert response.headers.get("content-encoding") == "gzip"
    expect(page.locator("#answer .answer-body")).to_be_visible()
    toc = page.locator(".answer-toc details")
    if device == "phone":
        expect(toc).not_to_have_attribute("open", "")  # collapsed: the text comes first
    else:
        expect(toc).to_have_attribute("open", "")
    check("permalink, completed")
    page.locator("a.gallery-thumb").first.click()
    lightbox = page.locator("dialog#lightbox")
    expect(lightbox.locator(".lightbox-close")).to_be_focused()
    expect(lightbox.locator(".lightbox-count")).to_have_text("Image 1 of 5")
    check("lightbox")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()

    page.goto(f"/r/{requests['running'].slug}/")
    expect(page.locator("#status [data-status]")).to_have_attribute(
        "data-status", re.compile("PENDING|CREATED|IN_PROGRESS")
    )
    expect(page.get_by_text("This page updates by itself.")).to_be_visible()
    check("permalink, running")
    page.goto(f"/r/{requests['failed'].slug}/")
    expect(page.get_by_role("heading", name="The job failed")).to_be_visible()
    check("permalink, failed")

    for path, heading in [
        ("/new/", "New research"),
        ("/import/", "Import requests"),
        ("/links/", "Public links"),
        ("/costs/", "Costs"),
        ("/settings/", "Settings"),
        ("/staff/calls/", "Upstream calls in the last hour"),
        (f"/links/{done.share_links.get().pk}/revoke/", "Revoke this public link?"),
    ]:
        page.goto(path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        check(path)
    if device == "phone":
        expect(page.locator("svg.chart-narrow")).to_have_count(0)  # (not on this page)

    page.goto("/settings/")
    page.get_by_role("button", name="Remove key").click()
    dialog = page.locator("dialog#remove-key-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    check("remove-key dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    page.goto("/costs/")
    chart = page.locator("svg.chart-narrow" if device == "phone" else "svg.chart-wide")
    expect(chart).to_be_visible()
    # The month labels read at 11 px or more on either screen.
    label = chart.locator("text.bar-label").first
    assert label.evaluate("t => t.getBoundingClientRect().height") >= 11

    response = page.goto("/no/such/page/")
    assert response.status == 404
    check("404")

    public = open_context(device, scheme)
    public.route(OFFSITE, lambda route: route.abort())
    public.goto(f"/s/{done.share_links.get().token}/")
    expect(public.locator("#answer .answer-body")).to_be_visible()
    assert_accessible(public, f"public page ({device}, {scheme})")
    assert_fits(public, "public page")
    assert [e for e in page.js_errors + public.js_errors if "Failed to load" not in e] == []
