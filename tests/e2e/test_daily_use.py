"""Daily use, as a browser audit found it (issue 21, items 3-14): an answer that starts near the
top with one Export menu and the contents first beside it, a share link on a line of its own,
skip links and a contents that is one Tab stop, focus back on the citation a source was opened
from, an image viewer that fills a phone and swipes, a print of the answer alone, the team
pages as cards on a phone, a first key that leads on, spacing and wording.

At 390 and 1280 px, light and dark; axe finds no serious violation on any page or state here.
With SONARWEB_SHOTS=<dir> each state is also saved there as a screenshot, to be looked at.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from sonarweb.accounts.models import Invitation, hash_token, new_invite_token
from sonarweb.media.models import AnswerImage, ImageStatus
from sonarweb.tracker.following.polling import refresh_if_due
from sonarweb.tracker.models import ShareLink, TrackedRequest
from tests.conftest import MEMBER_KEY, OWNER_KEY, PASSWORD, make_member, wait_for

from .conftest import assert_accessible, assert_fits, open_menu, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OFFSITE = re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])")
QUESTION = "How do heat pumps cope with very cold winters?"
EVERY_VIEW = [("phone", "dark"), ("phone", "light"), ("desktop", "light"), ("desktop", "dark")]
TWO_VIEWS = [("phone", "dark"), ("desktop", "light")]
PHONE_HEIGHT = 844


def check(page, state: str) -> None:
    assert_accessible(page, state)
    assert_fits(page, state)


def box(locator) -> dict[str, float]:
    return locator.evaluate(
        "e => { const b = e.getBoundingClientRect();"
        " return {x: b.x, y: b.y + scrollY, top: b.top, width: b.width, height: b.height,"
        " right: b.right, bottom: b.bottom + scrollY}; }"
    )


def active(page) -> str:
    """What has the focus, in words a failed assertion can show."""
    return page.evaluate(
        "() => { const a = document.activeElement;"
        " return a.tagName.toLowerCase() + (a.id ? '#' + a.id : '') +"
        " (a.className ? '.' + String(a.className).split(' ').join('.') : '') +"
        " ' ' + (a.textContent || '').trim().slice(0, 30); }"
    )


def answer(simulator, user: User, **job: object) -> TrackedRequest:
    job.setdefault("words", 2500)
    job.setdefault("sources", 12)
    job.setdefault("images", 5)
    job_id = simulator.add_job(OWNER_KEY, question=QUESTION, queue_seconds=0, run_seconds=0, **job)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user, question=QUESTION)
    refresh_if_due(tracked)
    return tracked


def open_answer(open_context, simulator, device: str, scheme: str, **job: object):
    page = open_context(device, scheme)
    page.route(OFFSITE, lambda route: route.abort())
    olivia = make_member("olivia", OWNER_KEY)
    tracked = answer(simulator, olivia, **job)
    images = int(job.get("images", 5))
    # The refresher archives the pictures after the answer: read once it has them all.
    wait_for(
        lambda: (
            AnswerImage.objects.filter(tracked=tracked, status=ImageStatus.STORED).count() == images
        ),
        "the answer's images",
    )
    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    expect(page.locator("#answer .answer-body")).to_be_visible()
    # The pictures arrive a moment after the answer; measure once they have.
    expect(page.locator("#images-poller")).to_have_count(0)
    return page, tracked


# --- items 3, 6 and 12: the answer first, one Export menu, the share link on its own line ------


@pytest.mark.parametrize(("device", "scheme"), EVERY_VIEW)
def test_the_answer_comes_first(open_context, sim_server, simulator, device, scheme):
    page, tracked = open_answer(open_context, simulator, device, scheme)
    phone = device == "phone"
    state = f"({device}, {scheme})"
    check(page, f"answer {state}")
    shot(page, f"answer-{device}-{scheme}")

    # The first paragraph of the answer: on a phone's first screen (it was at y=1034, below
    # it); at y=467 on a desktop, under a 300 px header with the downloads.
    first = box(page.locator(".answer-body > p").first)
    header = box(page.locator(".request-header"))
    if phone:
        assert first["y"] + 24 <= PHONE_HEIGHT, f"the answer starts at y={first['y']:.0f}"
        assert header["height"] <= 400, f"the header is {header['height']:.0f} px tall"
    else:
        assert first["y"] <= 380, f"the answer starts at y={first['y']:.0f}"
        assert header["height"] <= 220, f"the header is {header['height']:.0f} px tall"

    # One line of facts; the id waits in "Request details", shown once when opened.
    facts = page.locator("#status .facts.timing")
    expect(facts).to_contain_text("Model")
    if not phone:
        assert box(facts)["height"] < 30, "the facts take more than one line"
    expect(page.get_by_text(tracked.request_id, exact=True)).to_be_hidden()
    page.locator(".request-details > summary").click()
    expect(page.get_by_text(tracked.request_id, exact=True)).to_have_count(1)
    expect(page.get_by_text(tracked.request_id, exact=True)).to_be_visible()
    page.locator(".request-details > summary").click()

    # Contents: first in the side column on a desktop, from the answer's first line (it
    # started at y=785 under the downloads and the share panel); a closed bar on a phone.
    toc = page.locator("nav.answer-toc")
    body = box(page.locator(".answer-body"))
    if phone:
        expect(toc.locator("details")).not_to_have_attribute("open", "")
        assert box(toc)["y"] < first["y"]
    else:
        side = box(toc)
        left = box(page.locator(".answer > :not(.answer-toc)").first)
        assert side["x"] >= body["right"], "the contents are not beside the text"
        assert abs(side["y"] - left["y"]) <= 40, f"contents at y={side['y']:.0f}"
        # Nothing else sits in the side column.
        assert page.locator(".answer-section .share-panel, .answer-section .downloads").count() == 0

    # Item 15: the sources at a glance, above the text: hosts, each a link to its card.
    strip = page.get_by_role("navigation", name="Sources at a glance")
    expect(strip).to_be_visible()
    assert box(strip)["bottom"] <= body["y"], "the source strip is not above the answer"
    hosts = strip.get_by_role("link")
    assert hosts.count() >= 2
    expect(hosts.last).to_have_text(re.compile(r"^All \d+ sources$"))
    target = hosts.first.get_attribute("href")
    assert target and re.fullmatch(r"#source-\d+", target), target
    hosts.first.click()
    expect(page.locator(f"li.source-card{target}")).to_be_in_viewport()
    page.evaluate("window.scrollTo(0, 0)")

    # One Export menu: the answer's files, its sources for reference managers, copy, print.
    assert page.locator("details.menu.export-menu").count() == 1
    export = open_menu(page, "Export")
    slug = tracked.slug
    for href in (
        f"/r/{slug}/answer.md",
        f"/r/{slug}/answer.json",
        f"/r/{slug}/sources.bib",
        f"/r/{slug}/sources.ris",
        f"/r/{slug}/sources.json",
    ):
        expect(export.locator(f'a[href="{href}"]')).to_be_visible()
    for name in ("Copy as Markdown", "Print"):
        expect(export.get_by_role("button", name=name)).to_be_visible()
    panel = box(export.locator(".menu-panel"))
    assert panel["x"] >= 0 and panel["right"] <= page.viewport_size["width"]
    tallest_needed = 44 if phone else 40
    heights = export.locator(".menu-panel a, .menu-panel button").evaluate_all(
        "items => items.map(i => i.getBoundingClientRect().height)"
    )
    assert min(heights) >= tallest_needed - 0.5, heights
    # Copy and Print look like the links beside them (they were styled as buttons).
    styles = export.locator(".menu-panel a, .menu-panel button").evaluate_all(
        "items => items.map(i => { const s = getComputedStyle(i);"
        " return [s.fontSize, s.fontWeight, s.backgroundColor, s.textAlign].join(); })"
    )
    assert len(set(styles)) == 1, styles
    check(page, f"export menu {state}")
    shot(page, f"export-{device}-{scheme}")
    page.keyboard.press("Escape")
    expect(export).not_to_have_attribute("open", "")
    expect(export.locator("summary")).to_be_focused()

    # Share: the address on a full-width line of its own, Copy and Revoke under it.
    share = open_menu(page, "Share")
    share.get_by_role("button", name="Create public link").click()
    url = share.locator("textarea.share-url")
    expect(url).to_have_value(re.compile(r"/s/[\w-]+/$"))
    field = box(url)
    inner = share.locator(".share-link").evaluate("e => e.clientWidth")
    assert field["width"] >= inner - 2, f"the address is {field['width']:.0f} of {inner} px"
    assert url.evaluate("t => t.scrollHeight <= t.clientHeight + 1"), "the address is cut"
    copy = box(share.get_by_role("button", name="Copy public link 1"))
    revoke = box(share.get_by_role("button", name="Revoke public link 1"))
    assert copy["y"] >= field["bottom"] and revoke["y"] >= field["bottom"]
    assert abs(copy["y"] - revoke["y"]) < 2, "Copy and Revoke are not side by side"
    check(page, f"share menu {state}")
    shot(page, f"share-{device}-{scheme}")
    page.keyboard.press("Escape")
    expect(share).not_to_have_attribute("open", "")

    # The usage table and the History card below it do not touch.
    usage = box(page.locator("#answer-usage"))
    history = box(page.locator("#history"))
    assert history["y"] - usage["bottom"] >= 16, "no gap before History"
    assert page.js_errors == [] or all("Failed to load" in e for e in page.js_errors)


# --- item 7: skip links, one Tab stop for the contents, back to the citation --------------------


def press(page, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


@pytest.mark.parametrize(("device", "scheme"), TWO_VIEWS)
def test_keyboard_reaches_citations_and_images(open_context, sim_server, simulator, device, scheme):
    page, tracked = open_answer(open_context, simulator, device, scheme)
    permalink = f"/r/{tracked.slug}/"

    # It took 129 Tabs to reach the first citation. Skip to content, then to the answer.
    tabs = 0
    press(page, "Tab", "Enter")
    tabs += 1
    skip = page.get_by_role("link", name="Skip to the answer")
    page.keyboard.press("Tab")
    tabs += 1
    expect(skip).to_be_focused()
    assert box(skip)["top"] >= 0, "the skip link shows off screen"
    check(page, f"skip link shown ({device}, {scheme})")
    shot(page, f"skip-links-{device}-{scheme}")
    page.keyboard.press("Enter")
    while not page.evaluate("document.activeElement.matches('a.cite')"):
        page.keyboard.press("Tab")
        tabs += 1
        assert tabs <= 5, f"{tabs} Tabs and still at {active(page)}"
    marker = page.evaluate_handle("document.activeElement")
    number = page.evaluate("document.activeElement.hash")

    # Following it moves the focus to its source card; Escape comes back to that marker.
    page.keyboard.press("Enter")
    expect(page.locator(f"li{number}")).to_be_focused()
    expect(page.locator(f"li{number} .source-back")).to_be_visible()
    check(page, f"source card reached ({device}, {scheme})")
    page.keyboard.press("Escape")
    assert page.evaluate("m => document.activeElement === m", marker), active(page)
    # ... and so does its "Back to the text" button.
    page.keyboard.press("Enter")
    expect(page.locator(f"li{number}")).to_be_focused()
    back = page.locator(f"li{number} .source-back")
    expect(back).to_have_accessible_name(re.compile(r"^Back to the text, citation \d+$"))
    back.click()
    assert page.evaluate("m => document.activeElement === m", marker), active(page)
    expect(page.locator(".source-back")).to_have_count(0)

    # The back-links on a card read as places in the text, and lead to the citation there.
    cited = page.locator("#answer-sources div.source-cited").first
    expect(cited).to_contain_text(re.compile(r"Cited in \d+ places?:"))
    backlink = cited.locator("a.backlink").first
    expect(backlink).to_have_accessible_name(re.compile(r"^Cited place 1 of \d+ in the text$"))
    place = backlink.get_attribute("href")
    backlink.click()
    expect(page.locator(f"sup{place} a.cite").first).to_be_focused()

    # The first image: it took 921 Tabs.
    page.goto(permalink)
    expect(page.locator("#answer .answer-body")).to_be_visible()
    press(page, "Tab", "Enter", "Tab", "Tab", "Tab")
    expect(page.get_by_role("link", name="Skip to the images")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.locator("a.gallery-thumb").first).to_be_focused()
    # Sources likewise: the first source's title is the next Tab.
    page.goto(permalink)
    expect(page.locator("#answer .answer-body")).to_be_visible()
    press(page, "Tab", "Enter", "Tab", "Tab")
    expect(page.get_by_role("link", name="Skip to the sources")).to_be_focused()
    press(page, "Enter", "Tab")
    expect(page.locator("#answer-sources .source-title").first).to_be_focused()

    # The contents are a single Tab stop; the arrow keys move inside them.
    page.goto(permalink)
    expect(page.locator("#answer .answer-body")).to_be_visible()
    toc = page.locator("nav.answer-toc")
    page.locator(".request-details > summary").focus()
    page.keyboard.press("Tab")
    if device == "phone":
        expect(toc.locator("summary")).to_be_focused()
        page.keyboard.press("Enter")  # opens the list
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('nav.answer-toc a') !== null"), active(
        page
    )
    assert toc.locator("a[tabindex='0']").count() == 1
    first_entry = page.evaluate("document.activeElement.hash")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.hash") != first_entry
    assert toc.locator("a[tabindex='0']").count() == 1
    page.keyboard.press("Tab")
    assert not page.evaluate("document.activeElement.closest('nav.answer-toc')"), active(page)
    assert page.js_errors == [] or all("Failed to load" in e for e in page.js_errors)


# --- item 14: the image viewer ------------------------------------------------------------------


def swipe(page, dx: float) -> None:
    """A horizontal swipe on the picture, as pointer events (what a finger sends)."""
    page.locator(".lightbox-image").evaluate(
        """(img, dx) => {
            const b = img.getBoundingClientRect();
            const x = b.left + b.width / 2, y = b.top + b.height / 2;
            const at = (type, cx) => img.dispatchEvent(new PointerEvent(type, {
                bubbles: true, cancelable: true, pointerId: 7, pointerType: "touch",
                isPrimary: true, clientX: cx, clientY: y}));
            at("pointerdown", x);
            at("pointermove", x + dx / 2);
            at("pointerup", x + dx);
            const end = {bubbles: true, clientX: x + dx, clientY: y};
            img.dispatchEvent(new MouseEvent("click", end));
        }""",
        dx,
    )


@pytest.mark.parametrize(("device", "scheme"), EVERY_VIEW)
def test_image_viewer(open_context, sim_server, simulator, device, scheme):
    page, _ = open_answer(open_context, simulator, device, scheme, words=400, sources=4, images=4)
    thumbs = page.locator("a.gallery-thumb")
    expect(thumbs).to_have_count(4)
    thumbs.first.click()
    dialog = page.locator("dialog#lightbox")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("data-index", "0")
    viewer = box(dialog)
    if device == "phone":
        # Full screen: it was 274 px wide on a 390 px phone.
        assert viewer["width"] >= 389 and viewer["height"] >= PHONE_HEIGHT - 1, viewer
        assert box(dialog.locator(".lightbox-image"))["width"] >= 360
    for name in ("Previous image", "Next image", "Close"):
        button = dialog.get_by_role("button", name=name)
        size = box(button)
        assert size["width"] >= 44 and size["height"] >= 44, (name, size)
        # A button's shape: a background or a border of its own (they were bare arrows).
        assert button.evaluate(
            "b => { const s = getComputedStyle(b);"
            " return s.backgroundColor !== 'rgba(0, 0, 0, 0)' && s.borderTopStyle !== 'none'; }"
        ), name
        assert size["x"] >= 0 and size["right"] <= page.viewport_size["width"]
    check(page, f"image viewer ({device}, {scheme})")
    shot(page, f"lightbox-{device}-{scheme}")

    swipe(page, -160)  # to the left: the next image
    expect(dialog).to_have_attribute("data-index", "1")
    expect(dialog).to_be_visible()  # the swipe's click is not a tap on the backdrop
    swipe(page, 160)
    expect(dialog).to_have_attribute("data-index", "0")
    swipe(page, 12)  # a small move is a tap, not a swipe
    expect(dialog).to_have_attribute("data-index", "0")

    # The keyboard still works, and the focus returns to the thumbnail of the last image.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(dialog).to_have_attribute("data-index", "2")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(thumbs.nth(2)).to_be_focused()
    assert page.js_errors == [] or all("Failed to load" in e for e in page.js_errors)


# --- item 11: print -----------------------------------------------------------------------------


def bench_answer(user: User) -> TrackedRequest:
    """The 40,000-word benchmark answer (150 sources, 30 images), archived as the refresher
    would archive it."""
    from bench.fixture import QUESTION as BENCH_QUESTION
    from bench.fixture import REQUEST_ID, job_text
    from sonarweb.perplexity.sonar import loads_job
    from sonarweb.tracker.archive.store import archive_job
    from sonarweb.tracker.following.polling import job_fields

    text = job_text(40_000, 150, 30)
    job = loads_job(text)
    tracked = TrackedRequest.objects.create(
        request_id=REQUEST_ID, added_by=user, question=BENCH_QUESTION, next_poll_at=None
    )
    archive_job(tracked, job, text, job_fields(job, tracked.created, tracked.created))
    return tracked


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


# Printed before: 74 A4 pages with no margins, the text shrunk to about 9 pt to fit, opening
# with the id, a status line and 6 pages of contents. Now 10 pt text in 12 mm margins, the
# sources in two columns: about 79.
MOST_PAGES = 82


def test_print_is_the_answer_and_its_sources(open_context):
    page = open_context("desktop", "light")
    page.route(OFFSITE, lambda route: route.abort())
    olivia = make_member("olivia", OWNER_KEY)
    tracked = bench_answer(olivia)
    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    expect(page.locator("#answer .answer-body")).to_be_visible()

    page.emulate_media(media="print")
    for hidden in (
        "#status",
        ".request-details",
        ".answer-tools",
        "nav.answer-toc",
        "#image-archive",
        "#answer-usage",
        "#answer-related",
        "#answer-gallery",
        "#history",
        "div.source-cited",
        ".skip-links",
    ):
        locator = page.locator(hidden)
        if locator.count():
            expect(locator.first).to_be_hidden()
    expect(page.locator(".request-header h1")).to_have_text(tracked.display_title)
    expect(page.locator("#answer-sources")).to_be_visible()
    expect(page.locator(".source-card").first).to_be_visible()
    expect(page.get_by_text(tracked.request_id, exact=True)).to_be_hidden()
    pages = pdf_pages(page.pdf(format="A4"))
    assert 20 < pages <= MOST_PAGES, f"{pages} pages"


# --- item 4 and 13: the links and team pages; names and times ---------------------------------


@pytest.mark.parametrize(("device", "scheme"), EVERY_VIEW)
def test_links_and_team_fit_the_screen(open_context, device, scheme):
    olivia = make_member("olivia", OWNER_KEY)
    olivia.is_staff = True
    olivia.save(update_fields=["is_staff"])
    make_member("mateo", MEMBER_KEY)
    tracked = TrackedRequest.objects.create(
        request_id="job-links-1",
        added_by=olivia,
        question="A question whose title is long enough to wrap on a phone screen, and more",
        status="COMPLETED",
        next_poll_at=None,
    )
    ShareLink.objects.create(tracked=tracked, created_by=olivia)
    Invitation.objects.create(
        token_hash=hash_token(new_invite_token()),
        email="nia@example.com",
        created_by=olivia,
        expires_at=timezone.now() + timedelta(days=7),
    )
    page = open_context(device, scheme)
    sign_in(page, "olivia", PASSWORD)
    phone = device == "phone"

    # /links/ was 465 px wide on a phone, Copy and Revoke off screen.
    page.goto("/links/")
    row = page.locator("table.links-table tbody tr").first
    expect(row).to_be_visible()
    check(page, f"/links/ ({device}, {scheme})")
    shot(page, f"links-{device}-{scheme}")
    if phone:
        assert row.evaluate("r => getComputedStyle(r).display") == "flex"
    for name in ("Copy link", "Revoke"):
        button = box(row.locator(".link-actions button", has_text=name))
        assert button["right"] <= page.viewport_size["width"], name

    # /team/ was 477 px wide, and its scroll area failed scrollable-region-focusable.
    page.goto("/team/")
    members = page.locator("table.members-table")
    expect(members).to_be_visible()
    check(page, f"/team/ ({device}, {scheme})")
    shot(page, f"team-{device}-{scheme}")
    assert page.locator(".table-scroll:not([tabindex])").count() == 0
    mateo = page.locator("tr", has=page.locator("th", has_text="mateo"))
    deactivate = box(mateo.get_by_role("button", name="Deactivate mateo"))
    assert deactivate["x"] >= 0 and deactivate["right"] <= page.viewport_size["width"]
    # A member's name reads as the name it is, not as a column header.
    name, header, body = page.evaluate(
        "() => [document.querySelector('.members-table tbody th'),"
        " document.querySelector('.members-table thead th'), document.body]"
        ".map(e => { const s = getComputedStyle(e); return [s.fontSize, s.color]; })"
    )
    assert name == body and name != header, (name, header, body)
    # Times read as people say them: never "0 minutes ago".
    olivia_row = page.locator("tr", has=page.locator("th", has_text="olivia"))
    expect(olivia_row).to_contain_text("just now")
    expect(page.locator("main")).not_to_contain_text("0 minutes")


# --- items 9 and 13: the first key, the settings page -------------------------------------------


@pytest.mark.parametrize(("device", "scheme"), TWO_VIEWS)
def test_first_key_leads_to_the_next_step(open_context, sim_server, simulator, device, scheme):
    make_member("nadia", None)
    page = open_context(device, scheme)
    sign_in(page, "nadia", PASSWORD)
    page.goto("/settings/")
    # Where to get a key, and that the team's answers can be read without one.
    get_one = page.locator('main a[href="https://www.perplexity.ai/account/api"]')
    expect(get_one).to_contain_text("perplexity.ai/account/api")
    expect(page.locator("main")).to_contain_text("Without a key you can still read every answer")
    check(page, f"settings without a key ({device}, {scheme})")
    shot(page, f"settings-first-{device}-{scheme}")

    page.get_by_label("API key").fill(MEMBER_KEY)
    page.get_by_role("button", name="Save key").click()
    page.wait_for_url(re.compile(r"/$"))
    message = page.locator(".messages")
    expect(message).to_contain_text("Your API key pplx-…c3d4 works.")
    expect(message).to_contain_text("start new research")
    expect(page.get_by_role("link", name="start new research")).to_be_visible()
    check(page, f"dashboard with a flash message ({device}, {scheme})")
    shot(page, f"first-key-{device}-{scheme}")

    # A key replaced later stays on Settings; "Remove key" and the headings have room.
    page.goto("/settings/")
    expect(page.locator("main")).to_contain_text("saved just now")
    remove = box(page.get_by_role("button", name="Remove key"))
    tokens = box(page.get_by_role("heading", name="API tokens"))
    password = box(page.get_by_role("heading", name="Password"))
    assert tokens["y"] - remove["bottom"] >= 24, "Remove key touches the next heading"
    above = page.locator("#api-tokens").locator("button, a, p").last
    assert password["y"] - box(above)["bottom"] >= 24, "the tokens touch the Password heading"
    check(page, f"settings with a key ({device}, {scheme})")
    shot(page, f"settings-{device}-{scheme}")
    page.get_by_role("textbox", name="API key").fill(MEMBER_KEY)
    page.get_by_role("button", name="Replace key").click()
    expect(page.locator(".messages")).to_contain_text("saved and checked")
    assert page.url.endswith("/settings/")
    assert page.js_errors == []


# --- item 13: invitation errors ----------------------------------------------------------------


def errors_under(page, label: str) -> list[str]:
    """The errors listed right under the field named ``label``, one per list item."""
    field = page.get_by_label(label, exact=True)
    return field.evaluate(
        "f => { const list = f.closest('.field').querySelector('ul.form-errors');"
        " return list ? [...list.children].map(li => li.textContent.trim()) : []; }"
    )


@pytest.mark.parametrize(("device", "scheme"), TWO_VIEWS)
def test_invitation_errors_are_listed_under_their_fields(open_context, device, scheme):
    token = new_invite_token()
    Invitation.objects.create(
        token_hash=hash_token(token), expires_at=timezone.now() + timedelta(days=7)
    )
    page = open_context(device, scheme)
    page.goto(f"/invite/{token}/")
    page.get_by_label("Username").fill("nia")
    page.get_by_label("Password", exact=True).fill("123")
    page.get_by_label("Password confirmation").fill("124")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("ul.form-errors").first).to_be_visible()
    check(page, f"invitation errors ({device}, {scheme})")
    shot(page, f"invite-errors-{device}-{scheme}")
    # The mismatch under the confirmation, as its own line.
    mismatch = errors_under(page, "Password confirmation")
    assert len(mismatch) == 1 and "fields didn" in mismatch[0], mismatch
    # What is wrong with the password under the password, one line each (they ran together
    # into one sentence under the confirmation).
    under_password = errors_under(page, "Password")
    assert len(under_password) >= 2 and any("too short" in e for e in under_password), (
        under_password
    )
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")


def test_times_read_as_people_say_them():
    from sonarweb.tracker.templatetags.ui import ago

    now = timezone.now()
    assert ago(now, now) == "just now"
    assert ago(now + timedelta(seconds=3), now) == "just now"  # a clock a little ahead
    # A number and its unit are joined by a no-break space.
    assert ago(now - timedelta(seconds=12), now) == "12\xa0s ago"
    assert ago(now - timedelta(minutes=5, seconds=30), now) == "5\xa0min ago"
    assert ago(now - timedelta(hours=3, minutes=20), now) == "3\xa0hours ago"
    assert ago(now - timedelta(days=2, hours=5), now) == "2\xa0days ago"
