"""/costs/: sums per month and member, by model, and its chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

import pytest
from django.contrib.auth.models import User

from sonarweb.tracker.costs.totals import UNKNOWN_MODEL, Series, build_chart, team_costs
from sonarweb.tracker.models import TrackedRequest

pytestmark = pytest.mark.django_db

_ids = count(1)


def done(user, model: str, cost: str | None, when: datetime | None, **fields) -> TrackedRequest:
    n = next(_ids)
    return TrackedRequest.objects.create(
        request_id=f"req-{n}",
        added_by=user,
        status=fields.pop("status", "COMPLETED"),
        model=model,
        total_cost=None if cost is None else Decimal(cost),
        completed_at=when,
        next_poll_at=None,
        **fields,
    )


def at(year: int, month: int, day: int = 15) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


@pytest.fixture
def team(owner, member):
    alice = User.objects.create_user("alice", "alice@example.com", "x")
    done(owner, "sonar-deep-research", "1.250000", at(2025, 1, 3))
    done(owner, "sonar-deep-research", "0.750000", at(2025, 1, 28))
    done(owner, "sonar-pro", "0.010000", at(2025, 1, 10))
    done(member, "sonar-deep-research", "2.000000", at(2025, 3, 1))
    done(alice, "sonar-pro", "0.020000", at(2025, 3, 31))
    done(alice, "", "0.005000", at(2025, 3, 2))
    # Not counted: failed, unfinished, cancelled and completed without a reported cost.
    done(owner, "sonar-deep-research", None, at(2025, 3, 5), status="FAILED")
    done(owner, "sonar-deep-research", None, None, status="IN_PROGRESS")
    done(owner, "sonar-deep-research", None, at(2025, 3, 6), status="CANCELLED")
    done(member, "sonar-pro", None, at(2025, 3, 5))
    return {"olivia": owner, "mateo": member, "alice": alice}


def test_totals_per_month_and_member_by_model(member_client, team):
    response = member_client.get("/costs/")
    assert response.status_code == 200
    data = response.context["costs"]
    assert data.total == Decimal("4.035")
    assert data.count == 6
    assert [s.name for s in data.models] == ["sonar-deep-research", "sonar-pro", UNKNOWN_MODEL]
    assert data.model_totals == [Decimal("4"), Decimal("0.03"), Decimal("0.005")]

    months = {row.label: row for row in data.months}
    assert [row.label for row in data.months] == ["March 2025", "January 2025"]
    assert months["January 2025"].cells == [Decimal("2"), Decimal("0.01"), None]
    assert months["January 2025"].count == 3
    assert months["March 2025"].cells == [Decimal("2"), Decimal("0.02"), Decimal("0.005")]
    assert months["March 2025"].total == Decimal("2.025")

    members = {row.label: row for row in data.members}
    assert [row.label for row in data.members] == ["olivia", "mateo", "alice"]
    assert members["olivia"].cells == [Decimal("2"), Decimal("0.01"), None]
    assert members["olivia"].total == Decimal("2.01")
    assert members["alice"].cells == [None, Decimal("0.02"), Decimal("0.005")]
    assert members["mateo"].count == 1

    html = response.content.decode()
    assert "$4.0350" in html and "$2.0250" in html
    assert "No requests with a cost yet." not in html


def test_chart_is_inline_svg_with_title_and_no_style_attributes(member_client, team):
    html = member_client.get("/costs/").content.decode()
    wide = r'<svg class="chart chart-wide" viewBox="[^"]*" role="img".*?</svg>'
    svg = re.search(wide, html, re.S).group(0)
    assert '<title id="cost-chart-title">' in svg and "aria-labelledby" in svg
    assert "style=" not in html and "<script" not in svg
    # Jan, an empty Feb, and Mar: three month labels, bars only where there is cost.
    for label in ("Jan 2025", "Feb 2025", "Mar 2025"):
        assert f">{label}</text>" in svg
    rects = re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)" fill', svg)
    assert len(rects) == 5  # Jan: 2 models, Mar: 3 models
    assert "Mar 2025, sonar-pro: $0.0200" in svg


def test_phones_get_the_chart_drawn_across_with_the_same_figures(member_client, team):
    html = member_client.get("/costs/").content.decode()
    svg = re.search(r'<svg class="chart chart-narrow" viewBox="0 0 360 (\d+)".*?</svg>', html, re.S)
    assert svg is not None
    narrow = svg.group(0)
    for label in ("Jan 2025", "Feb 2025", "Mar 2025"):
        assert f">{label}</text>" in narrow
    assert len(re.findall(r"<rect ", narrow)) == 5
    assert "Mar 2025, sonar-pro: $0.0200" in narrow
    # Drawn 360 units wide for a 390 px screen: 14-unit labels read at about 12 px.
    assert 'font-size="14"' in narrow
    assert "style=" not in narrow


def test_chart_geometry_is_proportional():
    chart = build_chart(
        {
            datetime(2025, 1, 1).date(): {"a": Decimal("1")},
            datetime(2025, 2, 1).date(): {"a": Decimal("1"), "b": Decimal("1")},
        },
        [Series("a", "#000"), Series("b", "#fff")],
    )
    assert chart is not None
    jan, feb = chart.bars
    assert jan.segments[0].height * 2 == pytest.approx(sum(s.height for s in feb.segments))
    # The tallest bar reaches the top tick, which is a round number at or above the peak.
    assert chart.ticks[-1].label == "$2.00"
    assert feb.segments[-1].y == pytest.approx(chart.ticks[-1].y)
    # Stacked: b sits on top of a.
    assert feb.segments[1].y + feb.segments[1].height == pytest.approx(feb.segments[0].y)


def test_missing_completion_time_counts_in_the_tracking_month(member_client, owner):
    done(owner, "sonar-pro", "0.5", None, created=at(2024, 11, 20))
    data = member_client.get("/costs/").context["costs"]
    assert [row.label for row in data.months] == ["November 2024"]


def test_empty_state(member_client, owner):
    done(owner, "sonar-pro", None, at(2025, 1, 1))
    html = member_client.get("/costs/").content.decode()
    assert "No requests with a cost yet." in html
    assert 'role="img"' not in html


def test_query_count_does_not_grow_with_requests(owner, django_assert_max_num_queries):
    for i in range(40):
        done(owner, f"model-{i % 3}", "0.1", at(2025, 1 + i % 6))
    with django_assert_max_num_queries(2):
        data = team_costs()
    assert data.count == 40 and len(data.months) == 6


def test_billed_agent_runs_count_whatever_their_status(member_client, owner, member):
    """A run that stopped early, failed or was cancelled after upstream billed it is in the
    totals; a cancelled run without a reported cost is not."""
    done(owner, "openai/gpt-5.2", "0.015990", at(2026, 10, 2))
    done(owner, "openai/gpt-5.2", "0.004010", at(2026, 10, 3), status="INCOMPLETE")
    done(member, "openai/gpt-5.2", "0.002000", at(2026, 11, 1), status="FAILED")
    done(member, "openai/gpt-5.2", "0.001000", at(2026, 11, 2), status="CANCELLED")
    done(member, "openai/gpt-5.2", None, at(2026, 11, 3), status="CANCELLED")
    response = member_client.get("/costs/")
    data = response.context["costs"]
    assert data.count == 4 and data.total == Decimal("0.023")
    assert [(r.label, r.count, r.total) for r in data.months] == [
        ("November 2026", 2, Decimal("0.003")),
        ("October 2026", 2, Decimal("0.02")),
    ]
    html = response.content.decode()
    assert '<dd id="cost-total">$0.0230</dd>' in html
    assert "<dt>Requests</dt><dd>4</dd>" in html


def test_anonymous_is_sent_to_sign_in(anon_client):
    response = anon_client.get("/costs/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
