"""Browser tests: Playwright driving Debian's Chromium against a live app and simulator."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests
# make around it are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# expect() waits for a state in the page; give it as long as the actions get (see `page`).
# Prefer it to page.wait_for_function: that evals its string in the page on every poll after
# the first, which the app's CSP (no 'unsafe-eval') refuses, so a plain expression that is
# not true at once fails; an arrow function is evaluated once and only called afterwards.
expect.set_options(timeout=60_000)

CHROMIUM = os.environ.get("SONARWEB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def _need_browser() -> None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    message = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)."
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, refresher, settings) -> Iterator[object]:
    settings.SONARWEB_BADGE_POLL_SECONDS = 1
    context = browser.new_context(base_url=live_server.url)
    # Generous: a state that takes two seconds on an idle machine may take twenty on a busy
    # one (the refresher, the image archive and the browser share two CPUs).
    context.set_default_timeout(60_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    page.js_errors = errors
    yield page
    context.close()


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


# --- viewports, colour schemes and axe ---------------------------------------------------------

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
# A phone: 390 px wide, touch, mobile viewport rules.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DEVICES = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture
def open_context(browser, live_server, refresher, settings) -> Iterator[object]:
    """A factory of browser contexts for one device ("desktop"/"phone") and colour scheme,
    with the live app, the refresher, clipboard access, and script errors collected."""
    settings.SONARWEB_BADGE_POLL_SECONDS = 1
    contexts = []

    def open_page(device: str, scheme: str, **options: object):
        context = browser.new_context(
            base_url=live_server.url,
            color_scheme=scheme,
            permissions=["clipboard-read", "clipboard-write"],
            **DEVICES[device],
            **options,
        )
        context.set_default_timeout(60_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.js_errors = errors
        return page

    yield open_page
    for context in contexts:
        context.close()


def _axe_source() -> str:
    from axe_playwright_python.base import AXE_FILE_PATH

    return AXE_FILE_PATH.read_text(encoding="utf-8")


AXE_IMPACTS = ("serious", "critical")


def assert_accessible(page, state: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation.

    Injected through the DevTools protocol (page.evaluate), which the page's CSP does not
    govern, from the copy the axe-playwright-python package ships: no network needed.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' +"
        " (n.failureSummary || '').split('\\n').slice(0, 2).join(' '))})); }"
    )
    bad = [v for v in result if v["impact"] in AXE_IMPACTS]
    details = "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in bad
    )
    assert not bad, f"axe on {state} ({page.url}):\n{details}"


def assert_fits(page, state: str) -> None:
    """Nothing makes the page wider than the screen (no sideways scrolling)."""
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], f"{state} is {sizes[0]} px wide on a {sizes[1]} px screen"


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two computed colours (``rgb(r, g, b)``)."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def assert_focus_ring_visible(page, locator, state: str) -> None:
    """The focus ring of ``locator`` (focused by keyboard) is 3:1 or more against the card
    it sits on and against the page (WCAG 2.2 non-text contrast)."""
    locator.focus()
    colours = locator.evaluate(
        """e => {
            const style = getComputedStyle(e);
            let box = e.parentElement;
            while (box && getComputedStyle(box).backgroundColor === "rgba(0, 0, 0, 0)") {
                box = box.parentElement;
            }
            return [style.outlineColor, style.outlineStyle, style.outlineWidth,
                    box ? getComputedStyle(box).backgroundColor : "rgb(255, 255, 255)",
                    getComputedStyle(document.documentElement).backgroundColor];
        }"""
    )
    ring, line, width, behind, page_bg = colours
    assert line != "none" and float(width.removesuffix("px")) >= 2, f"{state}: no focus ring"
    for background in (behind, page_bg):
        ratio = contrast(ring, background)
        assert ratio >= 3, f"{state}: focus ring {ring} on {background} is {ratio:.1f}:1"


# Resolves once the element has kept the same box for three frames in a row (or after 600
# frames, leaving the click's own checks to decide).
_STILL = """async (element) => {
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  let last = "";
  for (let still = 0, frames = 0; still < 3 && frames < 600; frames++) {
    await frame();
    const box = element.getBoundingClientRect();
    const now = [box.x, box.y, box.width, box.height].join();
    still = now === last ? still + 1 : 0;
    last = now;
  }
}"""


def click_when_still(locator) -> None:
    """Click an entry in a list that scrolls itself, such as the contents beside an answer.

    Playwright scrolls the entry into view before it clicks; the page answers that scroll by
    moving the list to keep the current section's entry in view, and on a busy machine that
    move can fall between the button press and its release, so the click lands on the list
    instead. Scroll first, wait until the entry holds still, then click.
    """
    locator.scroll_into_view_if_needed()
    locator.evaluate(_STILL)
    locator.click()


def open_menu(page, name: str):
    """Open the answer page's menu named ``name`` ("Export" or "Share": a <details> whose
    summary is the button) unless it is open already; returns the menu."""
    menu = page.locator("details.menu").filter(has=page.locator(":scope > summary", has_text=name))
    if menu.get_attribute("open") is None:
        menu.locator(":scope > summary").click()
    expect(menu).to_have_attribute("open", "")
    return menu


def shot(page, name: str) -> None:
    """A screenshot for a person to look at, when SONARWEB_SHOTS names a folder."""
    folder = os.environ.get("SONARWEB_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
