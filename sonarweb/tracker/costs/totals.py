"""The team's costs: totals of ``usage.cost`` per month and member, by model.

Every request whose upstream reported a cost counts, whatever its status: Agent runs that end
INCOMPLETE are billed, and cancelled or failed runs may carry a cost too. A cost counts in the
month it was incurred, in ``settings.TIME_ZONE``: the request's completion time, or the time
it was tracked when upstream gave none.

Two aggregate queries over the partial index ``tracked_costs``, which holds every column they
read: the sums and counts per member and model (with the range of the times costs were
incurred), then per month and model; they are pivoted here into the page's tables and chart.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateField,
    F,
    Max,
    Min,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Round, TruncMonth
from django.db.models.lookups import GreaterThanOrEqual, LessThan

from ..models import TrackedRequest

MICROS = 1_000_000
UNKNOWN_MODEL = "(unknown model)"
REMOVED_MEMBER = "(removed)"
CHART_MONTHS = 12
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7f7f7f", "#f0e442"]

# A table cell: a cost and the number of requests it sums.
Cell = tuple[Decimal, int]

# Chart geometry in SVG user units; the SVG scales to its container.
WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 24, 44


@dataclass
class Row:
    label: str
    cells: list[Decimal | None]
    total: Decimal = Decimal(0)
    count: int = 0


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class Bar:
    label: str
    x_center: float
    total_label: str
    total_y: float
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[Tick]
    description: str
    # Every chart's geometry (class attributes, not fields).
    width = WIDTH
    height = HEIGHT
    left = LEFT
    right = WIDTH - RIGHT
    baseline = HEIGHT - BOTTOM
    tick_label_x = LEFT - 8
    month_label_y = HEIGHT - BOTTOM + 20


@dataclass(frozen=True)
class Series:
    name: str
    color: str


@dataclass
class Costs:
    models: list[Series] = field(default_factory=list)
    months: list[Row] = field(default_factory=list)
    members: list[Row] = field(default_factory=list)
    model_totals: list[Decimal] = field(default_factory=list)
    total: Decimal = Decimal(0)
    count: int = 0
    chart: Chart | None = None


def _pivot(groups: dict[str, dict[str, Cell]], models: list[str]) -> list[Row]:
    rows = []
    for label, by_model in groups.items():
        cells = [by_model[m][0] if m in by_model else None for m in models]
        total = sum((c for c in cells if c is not None), Decimal(0))
        rows.append(Row(str(label), cells, total, sum(n for _, n in by_model.values())))
    return rows


def money(value: Decimal | float, places: int = 2) -> str:
    return f"${value:,.{places}f}"


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above value."""
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _month_range(first: date, last: date) -> list[date]:
    months = []
    current = first
    while current <= last:
        months.append(current)
        current = _next_month(current)
    return months


def build_chart(per_month: dict[date, dict[str, Decimal]], series: list[Series]) -> Chart | None:
    """Stacked bars of cost per month, one colour per model, for the latest months."""
    if not per_month:
        return None
    last = max(per_month)
    months = _month_range(min(per_month), last)[-CHART_MONTHS:]
    totals = [sum(per_month.get(m, {}).values(), Decimal(0)) for m in months]
    peak = float(max(totals))
    if peak <= 0:
        return None
    top = _nice_ceiling(peak)
    places = 2 if top >= 1 else 4
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = Chart.baseline
    slot = (WIDTH - LEFT - RIGHT) / len(months)
    bar_width = min(slot * 0.6, 56)

    def scale(amount: float) -> float:
        return amount / top * plot_height

    bars = []
    for month, total in zip(months, totals, strict=True):
        label = month.strftime("%b %Y")
        x_center = LEFT + slot * (len(bars) + 0.5)
        y = float(baseline)
        segments = []
        for s in series:
            amount = per_month.get(month, {}).get(s.name)
            if not amount:
                continue
            height = scale(float(amount))
            y -= height
            segments.append(
                Segment(
                    round(x_center - bar_width / 2, 2),
                    round(y, 2),
                    round(bar_width, 2),
                    round(height, 2),
                    s.color,
                    f"{label}, {s.name}: {money(amount, 4)}",
                )
            )
        total_y = round(baseline - scale(float(total)) - 6, 2)
        bars.append(Bar(label, round(x_center, 2), money(total, places), total_y, segments))
    ticks = [
        Tick(round(baseline - scale(top * i / 4), 2), money(top * i / 4, places)) for i in range(5)
    ]
    return Chart(bars, ticks, "; ".join(f"{b.label}: {b.total_label}" for b in bars))


def incurred() -> Coalesce:
    """When a request's cost was incurred: its completion, or its tracking when upstream gave
    no completion time."""
    return Coalesce("completed_at", "created")


def _exact_month(zone: ZoneInfo) -> Cast:
    """The first day of the month of ``incurred()`` in ``zone``: what the page counts by."""
    return Cast(TruncMonth(incurred(), output_field=DateField(), tzinfo=zone), DateField())


def _month_start(month: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``month`` in ``zone``. Where a DST change skips midnight, fold=0
    reads the skipped midnight with the offset before the change: the change's own instant.
    (Checked against every zone's months from 1990 to 2037: right everywhere but in the hour
    Newfoundland's clocks went back across midnight into 1 November 2009.)"""
    return datetime(month.year, month.month, 1, tzinfo=zone)


def _ladder(months: list[tuple[date, datetime]]) -> Case | Value:
    """The month of ``incurred()`` among ``months`` (first day, first instant), sorted, for a
    time from the first one's start on: halving the list, so log2(months) comparisons."""
    if len(months) == 1:
        return Value(months[0][0], output_field=DateField())
    half = len(months) // 2
    return Case(
        When(LessThan(incurred(), months[half][1]), then=_ladder(months[:half])),
        default=_ladder(months[half:]),
        output_field=DateField(),
    )


def incurred_month(first: datetime, last: datetime) -> Case:
    """The first day of the month of ``incurred()`` in ``settings.TIME_ZONE``, for rows incurred
    from ``first`` to ``last``.

    That is ``TruncMonth`` with the zone as ``tzinfo``; but on SQLite TruncMonth is a Python
    function called for every row (about 10 µs each, 0.1 s for 10k requests), so rows in the
    range get their month from comparisons with each month's first instant instead, which the
    database makes itself. A row outside it (written between the two queries) gets TruncMonth.
    """
    zone = ZoneInfo(settings.TIME_ZONE or "UTC")
    local_first, local_last = first.astimezone(zone), last.astimezone(zone)
    months = _month_range(
        date(local_first.year, local_first.month, 1), date(local_last.year, local_last.month, 1)
    )
    starts = [(month, _month_start(month, zone)) for month in months]
    end = _month_start(_next_month(months[-1]), zone)
    return Case(
        When(LessThan(incurred(), starts[0][1]), then=_exact_month(zone)),
        When(GreaterThanOrEqual(incurred(), end), then=_exact_month(zone)),
        default=_ladder(starts),
    )


def _with_cost() -> QuerySet[TrackedRequest]:
    return TrackedRequest.objects.filter(total_cost__isnull=False).order_by()


def _micros() -> Sum:
    """The costs' sum in whole micro-dollars, each rounded to the column's six places: exact
    on both databases (SQLite keeps the column as floating point, whose sums drift)."""
    return Sum(Cast(Round(F("total_cost") * MICROS), BigIntegerField()))


def _add(groups: dict[Any, dict[str, Cell]], key: Any, row: dict[str, Any]) -> None:
    model = row["model"] or UNKNOWN_MODEL
    cost, n = groups.setdefault(key, {}).get(model, (Decimal(0), 0))
    groups[key][model] = (cost + Decimal(row["micros"]) / MICROS, n + row["n"])


def _per_member() -> tuple[dict[str, dict[str, Cell]], datetime | None, datetime | None]:
    """The sums per member and model, and when the first and the last cost were incurred."""
    rows = list(
        _with_cost()
        .values("model", "added_by__username")
        .annotate(
            micros=_micros(),
            n=Count("pk"),
            first=Min(incurred()),
            last=Max(incurred()),
        )
    )
    per_member: dict[str, dict[str, Cell]] = {}
    for row in rows:
        # Usernames are unique; every removed member's requests share one row.
        _add(per_member, row["added_by__username"] or REMOVED_MEMBER, row)
    first = min((row["first"] for row in rows), default=None)
    last = max((row["last"] for row in rows), default=None)
    return per_member, first, last


def team_costs() -> Costs:
    """The team's costs per month and per member, by model, and the chart: two queries, the
    sums per member (which give the range of months), then the sums per month."""
    per_member, first, last = _per_member()
    if first is None or last is None:
        return Costs()
    # The sums per month (its first day) and model.
    per_month: dict[date, dict[str, Cell]] = {}
    for row in (
        _with_cost()
        .values("model", month=incurred_month(first, last))
        .annotate(micros=_micros(), n=Count("pk"))
    ):
        _add(per_month, row["month"], row)
    if not per_month:
        return Costs()
    model_sums: Counter[str] = Counter()
    for groups in per_month.values():
        model_sums.update({model: cost for model, (cost, _n) in groups.items()})
    # The most expensive model first, so the chart's bottom segments are the big ones.
    names = sorted(model_sums, key=lambda m: (-model_sums[m], m))
    series = [Series(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(names)]
    months = _pivot(
        {m.strftime("%B %Y"): per_month[m] for m in sorted(per_month, reverse=True)}, names
    )
    members = _pivot(per_member, names)
    members.sort(key=lambda row: (-row.total, row.label))
    chart_input = {m: {k: v[0] for k, v in groups.items()} for m, groups in per_month.items()}
    return Costs(
        models=series,
        months=months,
        members=members,
        model_totals=[model_sums[n] for n in names],
        total=sum(model_sums.values(), Decimal(0)),
        count=sum(row.count for row in months),
        chart=build_chart(chart_input, series),
    )


# How long a computed /costs/ page is reused while no request with a cost was added, removed
# or changed; members renamed or removed show within this time.
CACHE_SECONDS = 300


def cached_team_costs() -> Costs:
    """``team_costs`` through Django's cache framework, keyed by one index-only aggregate
    (how many requests carry a cost, the newest of them, and their sum): at 100,000 answers
    the two grouping queries cost about 300 ms on SQLite, which the page does not pay again
    until a cost changes."""
    version = _with_cost().aggregate(n=Count("pk"), newest=Max("pk"), micros=_micros())
    key = (
        f"sonarweb:costs:{settings.TIME_ZONE}:{version['n']}:{version['newest']}:"
        f"{version['micros']}"
    )
    return cache.get_or_set(key, team_costs, CACHE_SECONDS)
