"""Copy buttons put the whole text on the clipboard and say so; focus stays in the share
panel; Revoke and Remove key ask first, with JavaScript and without."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.following.polling import refresh_if_due
from sonarweb.tracker.models import ApiKey, ShareLink, TrackedRequest
from tests.conftest import OWNER_KEY, PASSWORD, make_member

from .conftest import assert_accessible, open_menu, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OFFSITE = re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])")


def completed(simulator) -> TrackedRequest:
    user = make_member("olivia", OWNER_KEY)
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, words=1500, sources=6)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user)
    refresh_if_due(tracked)
    return tracked


def clipboard(page) -> str:
    return page.evaluate("() => navigator.clipboard.readText()")


@pytest.mark.parametrize(("device", "scheme"), [("desktop", "dark"), ("phone", "light")])
def test_copy_share_and_confirm(open_context, sim_server, simulator, device, scheme):
    page = open_context(device, scheme)
    page.route(OFFSITE, lambda route: route.abort())
    tracked = completed(simulator)
    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    announcer = page.locator("#announcer")

    # Create: the panel is swapped, and the focus lands on the new link's Copy button.
    open_menu(page, "Share")
    page.get_by_role("button", name="Create public link").click()
    copy = page.get_by_role("button", name="Copy public link 1")
    expect(copy).to_be_focused()
    expect(announcer).to_have_text("Public link created.")
    token = tracked.share_links.get().token
    url = f"{page.url.split('/r/')[0]}/s/{token}/"
    expect(page.locator("#share-panel textarea.share-url")).to_have_value(url)
    copy.click()
    expect(announcer).to_have_text("Public link 1 copied")
    assert clipboard(page) == url  # the whole absolute address

    # The answer as Markdown, a code block and a citation.
    open_menu(page, "Export").get_by_role("button", name="Copy as Markdown").click()
    expect(announcer).to_have_text("Answer copied as Markdown")
    page.keyboard.press("Escape")
    markdown = clipboard(page)
    assert markdown.startswith("# ") and "\n## Sources" in markdown
    code = page.locator(".answer-body pre").first
    page.get_by_role("button", name="Copy code block 1").click()
    expect(announcer).to_have_text("Code copied")
    assert clipboard(page) == code.text_content()
    page.get_by_role("button", name="Copy citation 1").click()
    expect(announcer).to_have_text("Citation 1 copied")
    citation = clipboard(page)
    title = page.locator("#source-1 .source-title")
    assert citation.startswith("[1] " + title.inner_text())
    assert citation.endswith(title.get_attribute("href"))

    # Revoke asks in a dialog; Cancel keeps the link.
    open_menu(page, "Share")
    page.get_by_role("button", name="Revoke public link 1").click()
    dialog = page.get_by_role("dialog", name="Revoke public link 1?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    assert_accessible(page, f"revoke dialog ({device}, {scheme})")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert ShareLink.objects.active().count() == 1
    page.get_by_role("button", name="Revoke public link 1").click()
    dialog.get_by_role("button", name="Revoke link").click()
    notice = page.locator("#share-panel .share-notice")
    expect(notice).to_have_text("Public link revoked.")
    expect(notice).to_be_focused()
    expect(page.locator("#share-panel")).to_contain_text("This answer has no public link.")
    assert ShareLink.objects.active().count() == 0

    # The links page copies a link's full address too.
    ShareLink.objects.create(tracked=tracked, created_by=tracked.added_by)
    link = ShareLink.objects.active().get()
    page.goto("/links/")
    page.get_by_role("button", name=re.compile("^Copy link to")).click()
    expect(announcer).to_have_text("Public link copied")
    assert clipboard(page) == f"{url.split('/s/')[0]}/s/{link.token}/"
    page.get_by_role("button", name=re.compile("^Revoke the link to")).click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke link").click()
    expect(page.locator(f"#link-{link.pk} [data-link-status='revoked']")).to_be_focused()

    # Remove key asks first.
    page.goto("/settings/")
    page.get_by_role("button", name="Remove key").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove key").click()
    expect(page.get_by_text("Your API key was removed.")).to_be_visible()
    assert not ApiKey.objects.exists()
    assert page.js_errors == [] or all("Failed to load" in e for e in page.js_errors)


def test_without_javascript(open_context, sim_server, simulator):
    """Confirmations are pages, a running job offers a reload, the toggles still open."""
    page = open_context("phone", "dark", java_script_enabled=False)
    page.route(OFFSITE, lambda route: route.abort())
    tracked = completed(simulator)
    link = ShareLink.objects.create(tracked=tracked, created_by=tracked.added_by)
    running_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=3600)
    running = TrackedRequest.objects.create(request_id=running_id, added_by=tracked.added_by)
    sign_in(page, "olivia", PASSWORD)

    page.goto(f"/r/{running.slug}/")
    expect(page.get_by_text("This page updates by itself.")).to_be_hidden()
    expect(page.get_by_role("link", name="reload it")).to_have_attribute(
        "href", f"/r/{running.slug}/"
    )

    page.goto(f"/r/{tracked.slug}/")
    expect(page.get_by_role("button", name="Copy public link 1")).to_be_hidden()
    toc = page.locator(".answer-toc details")
    toc.locator("summary").click()  # a plain <details>: opens without script
    expect(toc.locator("a").first).to_be_visible()
    open_menu(page, "Share")  # a plain <details> too
    page.get_by_role("button", name="Revoke public link 1").click()
    expect(page.get_by_role("heading", name="Revoke this public link?")).to_be_visible()
    page.get_by_role("button", name="Revoke link").click()
    expect(page.get_by_text("Public link revoked.")).to_be_visible()
    link.refresh_from_db()
    assert link.revoked_at is not None

    page.goto("/")
    page.locator(".filter-toggle > summary").click()
    expect(page.get_by_label("Search")).to_be_visible()

    page.goto("/settings/")
    page.get_by_role("button", name="Remove key").click()
    expect(page.get_by_role("heading", name="Remove your API key?")).to_be_visible()
    assert ApiKey.objects.exists()
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    assert ApiKey.objects.exists()
