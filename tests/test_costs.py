"""The numbers the dashboard and /costs/ show are what the rows say, whatever wrote them: the
badge is a stored generated column, and the costs are summed from the requests at each view
(every request with a cost, whatever its status, in the month it was incurred in TIME_ZONE)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, DateField
from django.db.models.functions import TruncMonth

from sonarweb.tracker.costs.totals import (
    REMOVED_MEMBER,
    UNKNOWN_MODEL,
    Costs,
    incurred,
    incurred_month,
    team_costs,
)
from sonarweb.tracker.models import AppState, TrackedRequest, UpstreamStatus

pytestmark = pytest.mark.django_db

STATUSES = ["", *UpstreamStatus.values]
STATES = AppState.values
_ids = count(1)


def costed(user, model: str, cost: str | None, when: datetime | None, **fields) -> TrackedRequest:
    return TrackedRequest.objects.create(
        request_id=f"cost-{next(_ids)}",
        added_by=user,
        status=fields.pop("status", "COMPLETED"),
        model=model,
        total_cost=None if cost is None else Decimal(cost),
        completed_at=when,
        next_poll_at=None,
        **fields,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def month_cells(data: Costs) -> dict[str, dict[str, Decimal]]:
    names = [s.name for s in data.models]
    return {
        row.label: {n: c for n, c in zip(names, row.cells, strict=True) if c is not None}
        for row in data.months
    }


def member_cells(data: Costs) -> dict[str, dict[str, Decimal]]:
    names = [s.name for s in data.models]
    return {
        row.label: {n: c for n, c in zip(names, row.cells, strict=True) if c is not None}
        for row in data.members
    }


def recount(zone: str = "UTC") -> tuple[dict, dict, int]:
    """What /costs/ should show, counted here in Python from every row."""
    months: dict[str, dict[str, Decimal]] = {}
    members: dict[str, dict[str, Decimal]] = {}
    n = 0
    for row in TrackedRequest.objects.select_related("added_by"):
        if row.total_cost is None:
            continue
        n += 1
        label = (row.completed_at or row.created).astimezone(ZoneInfo(zone)).strftime("%B %Y")
        who = row.added_by.username if row.added_by else REMOVED_MEMBER
        model = row.model or UNKNOWN_MODEL
        for groups, key in ((months, label), (members, who)):
            cells = groups.setdefault(key, {})
            cells[model] = cells.get(model, Decimal(0)) + row.total_cost
    return months, members, n


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


def test_counts_and_costs_follow_every_write(owner, member):
    """Random writes by every path the code has: create, save(), update(), bulk updates,
    deletes, a member removed (SET_NULL). After each round the badges and the costs equal a
    recount."""
    rng = random.Random(13)
    third = User.objects.create_user("third", "t@example.com", "x")
    people = [owner, member, third, None]
    base = utc(2025, 1, 30, 20)

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
            status="INCOMPLETE", total_cost=Decimal("2")
        )
        TrackedRequest.objects.filter(pk__in=[r.pk for r in rng.sample(rows, 3)]).delete()
        TrackedRequest.objects.filter(pk=rng.choice(rows).pk).update(created=base)
        if round_ == 3:
            third.delete()
            people.remove(third)
        months, members, n = recount()
        data = team_costs()
        assert (month_cells(data), member_cells(data), data.count) == (months, members, n)
        assert data.total == sum((sum(c.values()) for c in months.values()), Decimal(0))
        badges = Counter(r.badge_status for r in TrackedRequest.objects.all())
        grouped = TrackedRequest.objects.order_by().values_list("badge").annotate(n=Count("pk"))
        assert Counter(dict(grouped)) == badges


def test_agent_runs_count_whatever_their_status(owner):
    """Billed is billed: an Agent run that stopped early, failed or was cancelled counts when
    upstream reported a cost; a request without one never does."""
    when = utc(2026, 10, 5, 12)
    costed(owner, "sonar-deep-research", "1.500000", when)  # a Sonar job
    costed(owner, "openai/gpt-5.2", "0.015990", when, status="COMPLETED")
    costed(owner, "openai/gpt-5.2", "0.004000", when, status="INCOMPLETE")
    costed(owner, "openai/gpt-5.2", "0.002000", when, status="FAILED")
    costed(owner, "openai/gpt-5.2", "0.001000", when, status="CANCELLED")
    # Not counted: no cost reported (a cancelled run's usage is null), still running, or one
    # that finished without usage.
    costed(owner, "openai/gpt-5.2", None, when, status="CANCELLED")
    costed(owner, "openai/gpt-5.2", None, None, status="IN_PROGRESS")
    costed(owner, "openai/gpt-5.2", None, when, status="INCOMPLETE")
    data = team_costs()
    assert data.count == 5
    assert data.total == Decimal("1.522990")
    assert month_cells(data) == {
        "October 2026": {
            "sonar-deep-research": Decimal("1.5"),
            "openai/gpt-5.2": Decimal("0.02299"),
        }
    }
    rows = {row.label: row for row in data.members}
    assert rows["olivia"].count == 5


def test_months_are_taken_in_the_configured_time_zone(owner, settings):
    costed(owner, "sonar", "1", utc(2025, 1, 31, 23, 30))
    costed(owner, "sonar", "2", utc(2025, 3, 1, 3))
    settings.TIME_ZONE = "UTC"
    assert month_cells(team_costs()) == {
        "March 2025": {"sonar": Decimal(2)},
        "January 2025": {"sonar": Decimal(1)},
    }
    # 00:30 on 1 February in Oslo; 22:00 on 28 February in New York.
    settings.TIME_ZONE = "Europe/Oslo"
    assert month_cells(team_costs()) == {
        "March 2025": {"sonar": Decimal(2)},
        "February 2025": {"sonar": Decimal(1)},
    }
    settings.TIME_ZONE = "America/New_York"
    assert month_cells(team_costs()) == {
        "February 2025": {"sonar": Decimal(2)},
        "January 2025": {"sonar": Decimal(1)},
    }


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        # Oslo's April starts in summer time; Kolkata is 5:30 ahead; Asunción's clocks went
        # from 00:00 to 01:00 on 1 October 2017, so that month began at the change itself.
        ("Europe/Oslo", utc(2025, 3, 31, 22)),
        ("Asia/Kolkata", utc(2025, 3, 31, 18, 30)),
        ("America/Asuncion", utc(2017, 10, 1, 4)),
    ],
)
def test_a_month_begins_at_its_first_instant(owner, settings, zone, start):
    settings.TIME_ZONE = zone
    local = start.astimezone(ZoneInfo(zone))
    assert local.day == 1 and (start - timedelta(microseconds=1)).astimezone(local.tzinfo).day != 1
    costed(owner, "sonar", "1", start - timedelta(microseconds=1))
    costed(owner, "sonar", "2", start)
    costed(owner, "sonar", "4", start + timedelta(days=40))
    cells = month_cells(team_costs())
    before = (local - timedelta(days=1)).strftime("%B %Y")
    assert cells[before] == {"sonar": Decimal(1)}
    assert cells[local.strftime("%B %Y")] == {"sonar": Decimal(2)}


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Oslo", "Asia/Kolkata", "Pacific/Chatham", "America/Asuncion"]
)
def test_the_month_is_truncmonths_in_the_zone(owner, settings, zone):
    """The page's month of each row equals Django's TruncMonth in TIME_ZONE, for times all
    over three years and right at month boundaries, inside the range it is given and out."""
    settings.TIME_ZONE = zone
    tz = ZoneInfo(zone)
    rng = random.Random(zone)
    times = [utc(2023, 1, 1) + timedelta(seconds=rng.randrange(3 * 365 * 86400)) for _ in range(60)]
    for year, month in ((2023, 6), (2024, 3), (2024, 10), (2025, 11)):
        start = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
        times += [start - timedelta(microseconds=1), start, start + timedelta(seconds=1)]
    TrackedRequest.objects.bulk_create(
        TrackedRequest(request_id=f"tz-{i}", total_cost=Decimal("0.1"), completed_at=t)
        for i, t in enumerate(times)
    )
    exact = TruncMonth(incurred(), output_field=DateField(), tzinfo=tz)
    # The whole range, and a narrow one: rows before or after it take the exact path.
    for first, last in ((min(times), max(times)), (utc(2024, 2, 10), utc(2024, 9, 20))):
        rows = TrackedRequest.objects.annotate(
            month=incurred_month(first, last), exact=exact
        ).values_list("completed_at", "month", "exact")
        for when, month, expected in rows:
            local = when.astimezone(tz)
            assert month == expected == date(local.year, local.month, 1), when


def test_requests_without_a_completion_time_count_when_tracked(owner, settings):
    settings.TIME_ZONE = "Europe/Oslo"
    costed(owner, "sonar-pro", "0.5", None, created=utc(2024, 11, 30, 23, 30))
    assert list(month_cells(team_costs())) == ["December 2024"]


def test_a_removed_members_costs_stay_under_removed(owner, member):
    gone = User.objects.create_user("gone", "g@example.com", "x")
    also_gone = User.objects.create_user("also-gone", "a@example.com", "x")
    costed(gone, "sonar", "1", utc(2025, 1, 2))
    costed(also_gone, "sonar-pro", "2", utc(2025, 2, 2))
    costed(member, "sonar", "0.5", utc(2025, 2, 3))
    gone.delete()
    also_gone.delete()
    data = team_costs()
    assert [row.label for row in data.members] == [REMOVED_MEMBER, "mateo"]
    assert member_cells(data)[REMOVED_MEMBER] == {"sonar": Decimal(1), "sonar-pro": Decimal(2)}
    assert data.members[0].count == 2 and data.total == Decimal("3.5")


def test_an_unknown_model_has_its_own_column(owner):
    costed(owner, "", "0.25", utc(2025, 5, 5))
    costed(owner, "sonar", "0.5", utc(2025, 5, 6))
    data = team_costs()
    assert [s.name for s in data.models] == ["sonar", UNKNOWN_MODEL]
    assert data.model_totals == [Decimal("0.5"), Decimal("0.25")]


def test_sums_are_exact_to_the_micro_dollar(owner):
    """SQLite keeps the column as floating point; the sums are still exact (a float sum of
    these would be 1851335.18699998)."""
    TrackedRequest.objects.bulk_create(
        TrackedRequest(
            request_id=f"sum-{i}",
            added_by=owner,
            model="sonar",
            total_cost=Decimal("0.123457") if i % 2 else Decimal("1234.100001"),
            completed_at=utc(2025, 4, 1 + i % 28),
        )
        for i in range(3000)
    )
    data = team_costs()
    assert data.total == Decimal("0.123457") * 1500 + Decimal("1234.100001") * 1500
    assert str(data.months[0].cells[0]) == "1851335.187"


def test_two_queries_however_many_months_and_members(owner, member, django_assert_num_queries):
    people = [owner, member, None]
    for i in range(60):
        costed(people[i % 3], f"model-{i % 4}", "0.1", utc(2022 + i % 4, 1 + i % 12, 1 + i % 28))
    with django_assert_num_queries(2):
        data = team_costs()
    assert data.count == 60
    assert len(data.months) == len({(2022 + i % 4, 1 + i % 12) for i in range(60)})


def test_no_requests_with_a_cost_is_one_query(owner, django_assert_num_queries):
    costed(owner, "sonar", None, utc(2025, 1, 1))
    with django_assert_num_queries(1):
        data = team_costs()
    assert data.count == 0 and data.chart is None


# -- migrations ----------------------------------------------------------------------------------

BEFORE = ("tracker", "0008_agent_runs")
AFTER = ("tracker", "0009_drop_cost_ledger")


def ledger_objects() -> set[str]:
    """The cost ledger's tables, triggers and functions in the database."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE name LIKE 'tracker\\_costledger%' ESCAPE '\\'"
            )
        else:
            cursor.execute(
                "SELECT relname FROM pg_class WHERE relname LIKE 'tracker\\_costledger%%' "
                "UNION SELECT tgname FROM pg_trigger WHERE tgname LIKE 'tracker\\_costledger%%' "
                "UNION SELECT proname FROM pg_proc WHERE proname LIKE 'tracker\\_costledger%%'"
            )
        return {row[0] for row in cursor.fetchall()}


def index_names() -> set[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "tracker_trackedrequest")
    return {name for name, info in found.items() if info["index"]}


def test_a_migrated_database_has_no_ledger_and_has_the_costs_index():
    assert ledger_objects() == set()
    assert "tracked_costs" in index_names()


@pytest.fixture
def executor(transactional_db) -> Iterator[MigrationExecutor]:
    """Migrations run for real; the database is left fully migrated whatever happens."""
    executor = MigrationExecutor(connection)
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate(executor: MigrationExecutor, target: tuple[str, str]) -> None:
    executor.loader.build_graph()
    executor.migrate([target])
    executor.loader.build_graph()


def test_the_ledger_goes_and_comes_back_with_the_migrations(executor, owner):
    costed(owner, "sonar", "1.5", utc(2025, 1, 2))
    costed(owner, "sonar", "0.5", utc(2025, 1, 3), status="INCOMPLETE")
    migrate(executor, BEFORE)
    assert {"tracker_costledger", "tracker_costledger_zone"} <= ledger_objects()
    assert "tracked_costs" not in index_names()
    with connection.cursor() as cursor:
        cursor.execute("SELECT month, model, cost_micros, n FROM tracker_costledger")
        # Filled again as 0006 counted: completed requests only.
        assert [tuple(r) for r in cursor.fetchall()] == [("2025-01", "sonar", 1_500_000, 1)]
    migrate(executor, AFTER)
    assert ledger_objects() == set()
    assert "tracked_costs" in index_names()
    assert team_costs().total == Decimal(2)


def test_the_page_reuses_its_figures_until_a_cost_changes(
    owner, member, owner_client, django_assert_num_queries
):
    from django.core.cache import cache
    from django.urls import reverse

    from sonarweb.tracker.costs.totals import cached_team_costs

    cache.clear()
    costed(owner, "sonar", "0.5", utc(2025, 1, 1))
    first = cached_team_costs()
    with django_assert_num_queries(1):  # the version only
        again = cached_team_costs()
    assert again.count == first.count == 1
    costed(member, "openai/gpt-6-luna", "0.25", utc(2025, 2, 1))
    changed = cached_team_costs()
    assert changed.count == 2
    page = owner_client.get(reverse("costs")).content.decode()
    assert "openai/gpt-6-luna" in page
