"""Reading a long report: contents with a current section, citations previewed by tap and
linked back from their sources, scrolling tables and code, back to top, and print."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.following.polling import refresh_if_due
from sonarweb.tracker.models import TrackedRequest
from tests.conftest import OWNER_KEY, PASSWORD, make_member

from .conftest import assert_accessible, assert_fits, click_when_still, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OFFSITE = re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])")


def long_report(page, simulator) -> TrackedRequest:
    user = make_member("olivia", OWNER_KEY)
    job_id = simulator.add_job(
        OWNER_KEY, queue_seconds=0, run_seconds=0, words=6000, sources=24, images=4
    )
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user)
    refresh_if_due(tracked)
    page.route(OFFSITE, lambda route: route.abort())
    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    expect(page.locator("#answer .answer-body")).to_be_visible()
    # Its pictures arrive a moment after the answer (tests/test_image_archive_flow.py); read
    # once they have, so no swap lands in the middle of a click.
    expect(page.locator("#images-poller")).to_have_count(0)
    return tracked


def scroll_y(page) -> float:
    return page.evaluate("window.scrollY")


@pytest.mark.parametrize(("device", "scheme"), [("phone", "dark"), ("desktop", "light")])
def test_reading_a_long_report(open_context, sim_server, simulator, device, scheme):
    page = open_context(device, scheme)
    long_report(page, simulator)
    phone = device == "phone"
    toc = page.locator("nav.answer-toc")
    box = toc.locator("details")
    for section in ("answer-gallery", "answer-sources", "answer-related"):
        expect(toc.locator(f'a[href="#{section}"]')).to_have_count(1)

    # Contents: a collapsed bar on the phone that stays in view; an open column on desktop.
    sources_link = toc.locator('a[href="#answer-sources"]')
    if phone:
        expect(box).not_to_have_attribute("open", "")
        toc.locator("summary").click()
        expect(sources_link).to_be_visible()
    else:
        expect(box).to_have_attribute("open", "")
    click_when_still(sources_link)
    expect(page.locator("#answer-sources")).to_be_in_viewport()
    expect(sources_link).to_have_attribute("aria-current", "location")
    expect(toc).to_be_in_viewport()
    if phone:
        expect(box).not_to_have_attribute("open", "")  # closed again once a section is chosen
        expect(toc.locator(".toc-current")).to_have_text("· Sources")
        assert toc.evaluate("t => t.getBoundingClientRect().top") <= 1  # stuck to the top
    # Scrolling back into the text moves the highlight to the section being read.
    third = toc.locator("a").nth(2)
    target = page.locator(third.get_attribute("href"))
    target.evaluate("t => window.scrollTo(0, t.getBoundingClientRect().top + scrollY - 70)")
    expect(third).to_have_attribute("aria-current", "location")
    expect(sources_link).not_to_have_attribute("aria-current", re.compile(".*"))

    # Back to top appears once a screen down, and goes there.
    top = page.locator("a.back-to-top")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
    expect(top).to_be_visible()
    top.click()
    page.wait_for_function("() => window.scrollY < 50")
    expect(top).to_be_hidden()

    # A heading's own link shows on hover or focus, and stands out by more than its colour.
    anchor = page.locator(".answer-body h2 .heading-anchor").first
    anchor.focus()
    expect(anchor).to_have_css("opacity", "1")
    assert_accessible(page, f"a heading's link shown ({device}, {scheme})")

    # A citation previews its source where it is: a tap on a phone, focus on desktop; the
    # open card adds no Tab stop.
    marker = page.locator(".answer-body a.cite").nth(3)
    marker.scroll_into_view_if_needed()
    before = scroll_y(page)
    if phone:
        marker.tap()
    else:
        marker.focus()
    card = page.locator("#cite-card")
    expect(card).to_be_visible()
    assert card.evaluate(
        "c => { const b = c.getBoundingClientRect();"
        " return b.left >= 0 && b.right <= document.documentElement.clientWidth; }"
    ), "the citation card sticks out of the screen"
    assert abs(scroll_y(page) - before) < 5
    assert "#source-" not in page.url
    assert card.evaluate("c => [...c.querySelectorAll('a, button')].every(e => e.tabIndex === -1)")
    assert_accessible(page, f"open citation card ({device}, {scheme})")
    if phone:
        card.get_by_role("link", name="Show in the sources").click()
    else:
        page.keyboard.press("Tab")
        assert page.evaluate(
            "!document.getElementById('cite-card')?.contains(document.activeElement)"
        )
        # Back to the marker and follow it, by keyboard: the hover card a pointer would raise
        # over it is not what this step is about.
        marker.focus()
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#source-\d+$"))
    source = page.locator(".source-card:target")
    expect(source).to_be_in_viewport()

    # The source card leads back to the passages that cite it.
    backlink = source.locator("a.backlink").first
    group = backlink.get_attribute("href")
    backlink.click()
    expect(page).to_have_url(re.compile(re.escape(group) + "$"))
    expect(page.locator(f"sup{group}")).to_be_in_viewport()

    # Tables and code scroll inside focusable regions; table headers keep their words whole.
    region = page.locator(".answer-body .table-scroll").first
    expect(region).to_have_attribute("role", "region")
    region.focus()
    expect(region).to_be_focused()
    pre = page.locator(".answer-body pre").first
    expect(pre).to_have_attribute("tabindex", "0")
    assert region.evaluate(
        "r => [...r.querySelectorAll('th')].every(th => th.scrollWidth <= th.clientWidth + 1)"
    )
    assert_fits(page, "long report")

    # Print: bracketed markers; the facts, contents and menus stay off paper (the title,
    # the question, the answer and its sources are printed); every lazy image loaded first.
    page.emulate_media(media="print")
    pair = page.locator("sup.cites:has(a.cite + a.cite) a.cite").first
    assert pair.evaluate("a => getComputedStyle(a, '::before').content") == '"["'
    assert pair.evaluate("a => getComputedStyle(a, '::after').content") == '"]"'
    for hidden in ("#status", ".request-details", ".answer-tools", "nav.answer-toc"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator(".request-header h1")).to_be_visible()
    expect(page.locator("#answer-sources")).to_be_visible()
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.locator(".answer img[loading='lazy']").count() == 0
    page.emulate_media(media="screen")
    assert [e for e in page.js_errors if "Failed to load" not in e] == []
