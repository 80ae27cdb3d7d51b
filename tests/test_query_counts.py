"""The dashboard, its poll, /costs/ and a finished permalink make the same few queries however
many rows there are."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sonarweb.tracker.models import TrackedRequest

from .conftest import archived_request

pytestmark = pytest.mark.django_db

URLS = [
    "/",
    "/?status=COMPLETED",
    "/?member=olivia",
    "/?model=sonar-pro&member=olivia&status=IN_PROGRESS",
    "/?q=heat",
    "/?q=heat+-oslo",
    "/costs/",
]


def add_rows(owner, member, n: int) -> None:
    for i in range(n):
        archived_request(
            owner if i % 2 else member,
            {"response": {"choices": [{"message": {"content": f"Heat pumps {i}."}}]}},
            request_id=f"job-done-{n}-{i}",
            model="sonar-pro",
            total_cost=Decimal("0.1"),
        )
        TrackedRequest.objects.create(
            request_id=f"job-run-{n}-{i}", added_by=owner, status="IN_PROGRESS", model="sonar"
        )


def queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured]


@pytest.mark.parametrize("url", URLS)
def test_queries_do_not_grow_with_rows(owner_client, owner, member, url):
    add_rows(owner, member, 2)
    few = queries(owner_client, url)
    add_rows(owner, member, 30)
    many = queries(owner_client, url)
    assert len(many) == len(few), "\n".join(many)
    # Session, user, and the page's own handful. On PostgreSQL a search statement's time
    # bound is one more (set_config); inside the test's transaction also a savepoint, its
    # release, and putting the setting back.
    bound = 4 if connection.vendor == "postgresql" and "q=" in url else 0
    assert len(many) <= 10 + bound, "\n".join(many)


def test_costs_is_two_aggregates_over_the_requests_then_one(owner_client, owner, member):
    from django.core.cache import cache

    cache.clear()
    add_rows(owner, member, 10)
    sql = [q for q in queries(owner_client, "/costs/") if "tracker_" in q]
    # The cache key (one aggregate), then the figures (two grouped aggregates).
    assert len(sql) == 3, "\n".join(sql)
    assert sum("GROUP BY" in q for q in sql) == 2
    assert not any("tracker_answerarchive" in q or "tracker_costledger" in q for q in sql)
    again = [q for q in queries(owner_client, "/costs/") if "tracker_" in q]
    assert len(again) == 1 and "GROUP BY" not in again[0]


def test_a_dashboard_poll_is_a_few_queries(owner_client, owner, member):
    add_rows(owner, member, 30)
    rows = TrackedRequest.objects.filter(status="IN_PROGRESS")[:25]
    top = TrackedRequest.objects.order_by("-created", "-id").first()
    from sonarweb.tracker.listing import encode_cursor

    url = "/badges/?" + "&".join(f"s={r.slug}" for r in rows) + f"&top={encode_cursor(top)}"
    sql = queries(owner_client, url)
    # Session, user, rows, new rows, early poll, counts.
    assert len(sql) <= 7, "\n".join(sql)
    assert not any("tracker_answerarchive" in q for q in sql)


def test_a_finished_permalink_is_a_dozen_queries_and_a_revisit_three(owner_client, owner, member):
    add_rows(owner, member, 3)
    tracked = TrackedRequest.objects.filter(status="COMPLETED").first()
    url = f"/r/{tracked.slug}/"
    owner_client.get(url)  # makes the member's CSRF cookie, which the ETag needs
    # Session, user, the row's version (for the ETag), the row, the archive's rendering time,
    # images (2), bundle, the stored HTML, audit trail (2), share links: rendered every view.
    sql = queries(owner_client, url)
    assert len(sql) <= 12, "\n".join(sql)
    assert sum("rendered_html" in q for q in sql) == 1
    assert not any("raw_json" in q for q in sql)
    etag = owner_client.get(url)["ETag"]
    with CaptureQueriesContext(connection) as captured:
        assert owner_client.get(url, headers={"if-none-match": etag}).status_code == 304
    # Session, user, and the row's version: nothing else.
    assert len(captured) == 3, "\n".join(q["sql"] for q in captured)


@pytest.mark.parametrize("url", [u for u in URLS if "q=" not in u])
def test_list_pages_never_read_the_answer_table(owner_client, owner, member, url):
    add_rows(owner, member, 3)
    assert not [q for q in queries(owner_client, url) if "tracker_answerarchive" in q]
