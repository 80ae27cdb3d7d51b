"""The import page's list of a key's Sonar jobs (issue 21, item 10), where the Sonar API still
answers: each job shows what the team knows of it (a tracked job's question), the checkboxes
are 44 px targets, "Select all" picks every listed job, and on a phone an id stays on one
clipped line with the Status in view. At 390 and 1280 px, light and dark, with axe.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sonarweb.simulator.app import Simulator
from sonarweb.tracker.models import TrackedRequest
from tests.conftest import MEMBER_KEY, OWNER_KEY, PASSWORD, make_member

from .conftest import assert_accessible, assert_fits, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVERY_VIEW = [("phone", "dark"), ("phone", "light"), ("desktop", "light"), ("desktop", "dark")]
QUESTION = "How do heat pumps cope with very cold winters in the far north of Norway?"
TARGET_PX = 44


@pytest.fixture
def simulator() -> Simulator:
    # The Sonar API as it was before its retirement, so the key's job list answers.
    return Simulator(
        keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, run_seconds=3600, sonar_retired=False
    )


def rect(locator) -> dict[str, float]:
    return locator.evaluate(
        "e => { const b = e.getBoundingClientRect();"
        " return {left: b.left, right: b.right, width: b.width, height: b.height}; }"
    )


def line_count(locator) -> float:
    """How many lines of text the element takes."""
    return locator.evaluate(
        "e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)"
    )


@pytest.mark.parametrize(("device", "scheme"), EVERY_VIEW)
def test_the_job_list_shows_questions_picks_all_and_fits(
    open_context, sim_server, simulator, device, scheme
):
    olivia = make_member("olivia", OWNER_KEY)
    jobs = [
        simulator.add_job(OWNER_KEY, model=model, created_ago=ago)
        for model, ago in [("sonar-deep-research", 50), ("sonar-pro", 30), ("sonar", 10)]
    ]
    # One of them the team follows already: its question stands in for the heading.
    TrackedRequest.objects.create(
        request_id=jobs[0], added_by=olivia, question=QUESTION, next_poll_at=None
    )
    page = open_context(device, scheme)
    sign_in(page, "olivia", PASSWORD)
    page.goto("/import/#sonar-jobs")
    rows = page.locator("#import-rows tr")
    expect(rows).to_have_count(3)
    state = f"the import list ({device}, {scheme})"
    assert_accessible(page, state)
    assert_fits(page, state)
    shot(page, f"import-{device}-{scheme}")

    tracked_row = rows.filter(has=page.get_by_title(jobs[0], exact=True))
    expect(tracked_row.locator(".id-heading")).to_have_text(QUESTION)
    expect(tracked_row.get_by_role("link", name="Tracked")).to_be_visible()

    width = page.viewport_size["width"]
    for job in jobs[1:]:
        row = rows.filter(has=page.get_by_title(job, exact=True))
        # The whole label is the target, 44 px at least each way.
        target = rect(row.locator("label.pick"))
        assert target["width"] >= TARGET_PX and target["height"] >= TARGET_PX, target
        # An id on one line, clipped, whole in its title; the status in view.
        ident = row.locator(".id-clip")
        assert line_count(ident) < 1.5, job
        status = rect(row.locator(".status-cell .badge"))
        assert status["left"] >= 0 and status["right"] <= width, (job, status)

    # Select all picks the listed jobs that are not tracked yet, and unpicks them.
    select_all = page.get_by_label("Select all listed jobs")
    expect(select_all).to_be_visible()
    assert rect(page.locator("label.pick-all"))["height"] >= TARGET_PX
    boxes = page.locator('#import-rows input[name="ids"]')
    expect(boxes).to_have_count(2)
    select_all.check()
    for index in range(2):
        expect(boxes.nth(index)).to_be_checked()
    boxes.first.uncheck()
    assert select_all.evaluate("e => e.indeterminate") is True
    select_all.check()
    page.get_by_role("button", name="Track selected").click()
    expect(page.locator(".messages")).to_be_visible()
    assert set(TrackedRequest.objects.values_list("request_id", flat=True)) == set(jobs)
