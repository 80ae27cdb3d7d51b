"""/costs/ draws its chart twice, for a wide screen and for a phone; CSS shows exactly one."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from sonarweb.tracker.models import TrackedRequest
from tests.conftest import PASSWORD, make_member

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("device", "width", "shown", "hidden"),
    [
        ("desktop", 1280, "svg.chart-wide", "svg.chart-narrow"),
        ("phone", 390, "svg.chart-narrow", "svg.chart-wide"),
    ],
)
def test_one_chart_per_screen(open_context, device, width, shown, hidden):
    olivia = make_member("olivia", None)
    for month in (1, 2, 3):
        TrackedRequest.objects.create(
            request_id=f"cost-{month}",
            added_by=olivia,
            status="COMPLETED",
            model="sonar-pro",
            total_cost=Decimal("0.25") * month,
            completed_at=datetime(2025, month, 10, 12, tzinfo=UTC),
            next_poll_at=None,
        )
    page = open_context(device, "light")
    sign_in(page, "olivia", PASSWORD)
    page.goto("/costs/")
    assert page.evaluate("() => window.innerWidth") == width
    expect(page.locator(shown)).to_be_visible()
    expect(page.locator(hidden)).to_be_hidden()
    assert page.locator(hidden).evaluate("e => getComputedStyle(e).display") == "none"
    expect(page.locator(".cost-chart svg.chart:visible")).to_have_count(1)
    assert page.js_errors == []
