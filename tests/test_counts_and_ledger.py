"""The numbers the dashboard and /costs/ show come from what the database keeps (a stored badge
column, a cost ledger kept by triggers). Whatever writes the rows, they cannot drift."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count

from sonarweb.tracker import ledger
from sonarweb.tracker.costs import ledger as cost_ledger
from sonarweb.tracker.models import AppState, TrackedRequest, UpstreamStatus

pytestmark = pytest.mark.django_db

STATUSES = ["", *UpstreamStatus.values]
STATES = AppState.values


def test_the_stored_badge_is_the_badge_shown(owner):
    rows = [
        TrackedRequest.objects.create(
            request_id=f"job-{status}-{state}", added_by=owner, status=status, state=state
        )
        for status in STATUSES
        for state in STATES
    ]
    stored = dict(TrackedRequest.objects.values_list("pk", "badge"))
    assert {r.pk: r.badge_status for r in rows} == stored


def ledger_table() -> dict[tuple[str, int, str], tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT month, member_id, model, cost_micros, n FROM tracker_costledger")
        return {(m, u, d): (int(c), int(n)) for m, u, d, c, n in cursor.fetchall() if n}


def expected_ledger() -> dict[tuple[str, int, str], tuple[int, int]]:
    totals: dict[tuple[str, int, str], tuple[int, int]] = {}
    for row in TrackedRequest.objects.filter(status="COMPLETED", total_cost__isnull=False):
        when = row.completed_at or row.created
        key = (when.astimezone(UTC).strftime("%Y-%m"), row.added_by_id or 0, row.model)
        cost, n = totals.get(key, (0, 0))
        totals[key] = (cost + int(row.total_cost * 1_000_000), n + 1)
    return totals


def test_counts_and_the_cost_ledger_cannot_drift(owner, member):
    """Random writes by every path the code has: create, save(), update(), bulk updates,
    deletes, a member removed (SET_NULL). After each round the ledger equals a recount."""
    rng = random.Random(13)
    third = User.objects.create_user("third", "t@example.com", "x")
    people = [owner, member, third, None]
    base = datetime(2025, 1, 30, 20, tzinfo=UTC)

    def random_fields() -> dict[str, object]:
        return {
            "status": rng.choice(STATUSES),
            "state": rng.choice(STATES),
            "model": rng.choice(["sonar", "sonar-pro", ""]),
            "total_cost": rng.choice([None, Decimal("0.5"), Decimal("1.234567"), Decimal(0)]),
            "completed_at": rng.choice([None, base + timedelta(hours=rng.randint(0, 100))]),
        }

    for round_ in range(6):
        for i in range(15):
            TrackedRequest.objects.create(
                request_id=f"job-{round_}-{i}", added_by=rng.choice(people), **random_fields()
            )
        rows = list(TrackedRequest.objects.all())
        for row in rng.sample(rows, 8):
            for name, value in random_fields().items():
                setattr(row, name, value)
            row.save()
        for row in rng.sample(rows, 8):
            TrackedRequest.objects.filter(pk=row.pk).update(**random_fields())
        TrackedRequest.objects.filter(pk__in=[r.pk for r in rng.sample(rows, 4)]).update(
            status="COMPLETED", total_cost=Decimal("2")
        )
        TrackedRequest.objects.filter(pk__in=[r.pk for r in rng.sample(rows, 3)]).delete()
        TrackedRequest.objects.filter(pk=rng.choice(rows).pk).update(created=base)
        if round_ == 3:
            third.delete()
            people.remove(third)
        assert ledger_table() == expected_ledger(), f"round {round_}"
        badges = Counter(r.badge_status for r in TrackedRequest.objects.all())
        grouped = TrackedRequest.objects.order_by().values_list("badge").annotate(n=Count("pk"))
        assert Counter(dict(grouped)) == badges

    data = cost_ledger()
    assert data.count == sum(n for _, n in expected_ledger().values())


def test_the_ledger_is_rebuilt_when_the_time_zone_changes(owner, settings):
    TrackedRequest.objects.create(
        request_id="job-edge",
        added_by=owner,
        status="COMPLETED",
        total_cost=Decimal("1"),
        completed_at=datetime(2025, 1, 31, 23, 30, tzinfo=UTC),
    )
    assert [m for m, _, _ in ledger_table()] == ["2025-01"]
    settings.TIME_ZONE = "Europe/Oslo"
    assert ledger.ensure(connection) is True
    assert [m for m, _, _ in ledger_table()] == ["2025-02"]
    assert ledger.ensure(connection) is False
    settings.TIME_ZONE = "UTC"
    assert ledger.ensure(connection) is True
