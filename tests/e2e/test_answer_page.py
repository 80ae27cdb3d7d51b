"""A completed answer in Chromium: lightbox by keyboard, citations, hostile answers."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.models import TrackedRequest
from tests.conftest import OWNER_KEY, PASSWORD, make_member
from tests.test_answers_security import BAD_URLS, XSS

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Only the app itself may be asked for anything: answers point at example domains.
OFFSITE = re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])")


def script_errors(page) -> list[str]:
    # Offsite images are blocked on purpose (see OFFSITE); their load errors are expected.
    return [e for e in page.js_errors if not e.startswith("Failed to load resource")]


def open_answer(page, simulator, **job) -> TrackedRequest:
    user = make_member("olivia", OWNER_KEY)
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, **job)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user)
    page.route(OFFSITE, lambda route: route.abort())
    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    expect(page.locator("#status [data-status]")).to_have_attribute("data-status", "COMPLETED")
    return tracked


def test_lightbox_works_with_the_keyboard(page, sim_server, simulator):
    open_answer(page, simulator, words=400, sources=4, images=4)
    thumbs = page.locator("a.gallery-thumb")
    expect(thumbs).to_have_count(4)
    thumbs.nth(0).focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#lightbox")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("data-index", "0")
    first_alt = thumbs.nth(0).locator("img").get_attribute("alt")
    expect(dialog.locator(".lightbox-image")).to_have_attribute("alt", first_alt)

    page.keyboard.press("ArrowRight")
    expect(dialog).to_have_attribute("data-index", "1")
    second_alt = thumbs.nth(1).locator("img").get_attribute("alt")
    expect(dialog.locator(".lightbox-image")).to_have_attribute("alt", second_alt)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(dialog).to_have_attribute("data-index", "3")  # wraps around
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(dialog).to_have_attribute("data-index", "1")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # Focus goes back to the thumbnail of the image last shown, not to the top of the page.
    expect(thumbs.nth(1)).to_be_focused()
    assert script_errors(page) == []


def test_citation_marker_leads_to_its_source_card(page, sim_server, simulator):
    open_answer(page, simulator, words=600, sources=6, images=0)
    marker = page.locator("#answer .answer-body a.cite").first
    number = marker.get_attribute("href").removeprefix("#source-")
    title = page.locator(f"#source-{number} .source-title").inner_text()
    # The accessible name, as the browser computes it, carries the title and the domain.
    domain = page.locator(f"#source-{number} .source-domain").inner_text()
    expect(marker).to_have_accessible_name(re.compile(re.escape(title) + r".*" + re.escape(domain)))

    marker.focus()  # the hover card also opens for keyboard users
    card = page.locator("#cite-card")
    expect(card).to_be_visible()
    expect(card).to_contain_text(title)
    page.keyboard.press("Escape")
    expect(card).to_have_count(0)

    marker.click()
    expect(page).to_have_url(re.compile(rf"#source-{number}$"))
    target = page.locator(f"#source-{number}")
    expect(target).to_be_in_viewport()
    assert page.evaluate("document.querySelector(':target').id") == f"source-{number}"
    assert script_errors(page) == []


TRAP = "window.__pwned=(window.__pwned||0)+1"


def hostile_completion() -> dict:
    payloads = [p.replace("alert(1)", TRAP).replace("alert(2)", TRAP) for p in XSS]
    urls = [u.replace("alert(1)", TRAP) for u in BAD_URLS]
    content = "\n\n".join(
        [
            "# Report",
            f"<img src=x onerror={TRAP}> and <svg onload={TRAP}>",
            f"[click me](javascript:{TRAP}) and [me too](JaVaScRiPt:{TRAP}) [1]",
            f'<a href="javascript:{TRAP}">raw link</a>',
            f"<details open ontoggle={TRAP}><summary>x</summary></details>",
            *payloads,
            *(f"[bad {i}]({url}) ![bad image {i}]({url})" for i, url in enumerate(urls)),
        ]
    )
    return {
        "id": "hostile",
        "model": "sonar-pro",
        "choices": [{"message": {"content": content}}],
        "citations": [f"javascript:{TRAP}", "https://ok.example/a"],
        "search_results": [
            {"url": f"javascript:{TRAP}", "title": f"<img src=x onerror={TRAP}>"},
            {"url": "https://ok.example/a", "title": f'"><script>{TRAP}</script>'},
        ],
        "images": [
            {"image_url": f"javascript:{TRAP}", "origin_url": f"javascript:{TRAP}", "title": "a"},
            {
                "image_url": "https://img.example/ok.png",
                "origin_url": f"javascript:{TRAP}",
                "title": f"<img src=x onerror={TRAP}>",
            },
        ],
        "related_questions": [f"<script>{TRAP}</script>"],
    }


def test_hostile_answer_runs_no_script_even_when_clicked(page, sim_server, simulator):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    open_answer(page, simulator, completion=hostile_completion())
    answer = page.locator("#answer article.answer")
    expect(answer).to_contain_text("click me")

    # Click everything in the answer that stays on this page: in-page links, the gallery,
    # the reasoning toggle and the text the dangerous links were turned into.
    clickable = answer.locator("a[href^='#'], a.gallery-thumb, summary, img, .answer-body p")
    for i in range(clickable.count()):
        element = clickable.nth(i)
        if element.is_visible():
            element.click(no_wait_after=True)
            if page.locator("dialog#lightbox[open]").count():
                page.keyboard.press("Escape")
    for text in ("click me", "me too", "raw link"):
        page.get_by_text(text, exact=False).first.click()
    page.wait_for_timeout(300)

    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert page.evaluate("window.__csp") == []
    assert (
        page.locator("#answer script, #answer iframe, #answer object, #answer embed").count() == 0
    )
    handlers = page.evaluate(
        "Array.from(document.querySelectorAll('#answer *')).flatMap(e =>"
        " Array.from(e.attributes).map(a => a.name).filter(n => n.startsWith('on')))"
    )
    assert handlers == []
    assert "/r/" in page.url
    assert script_errors(page) == []
