"""The team's cost ledger: totals of ``usage.cost`` per month and member, by model.

The database keeps the sums current as requests complete (see ledger.py), so the work here is
one query over months x members x models, never proportional to the number of requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection

from .ledger import TABLE as LEDGER

MICROS = Decimal(1_000_000)
UNKNOWN_MODEL = "(unknown model)"
REMOVED_MEMBER = "(removed)"
CHART_MONTHS = 12
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7f7f7f", "#f0e442"]

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
    width: int
    height: int
    left: int
    right: int
    baseline: int
    tick_label_x: int
    month_label_y: int
    bars: list[Bar]
    ticks: list[Tick]
    description: str


@dataclass(frozen=True)
class Series:
    name: str
    color: str


@dataclass
class Ledger:
    models: list[Series] = field(default_factory=list)
    months: list[Row] = field(default_factory=list)
    members: list[Row] = field(default_factory=list)
    model_totals: list[Decimal] = field(default_factory=list)
    total: Decimal = Decimal(0)
    count: int = 0
    chart: Chart | None = None


def _pivot(groups: dict[object, dict[str, tuple[Decimal, int]]], models: list[str]) -> list[Row]:
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


def _month_range(first: date, last: date) -> list[date]:
    months = []
    current = first
    while current <= last:
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
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
    baseline = HEIGHT - BOTTOM
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
    description = "; ".join(f"{b.label}: {b.total_label}" for b in bars)
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        baseline=baseline,
        tick_label_x=LEFT - 8,
        month_label_y=baseline + 20,
        bars=bars,
        ticks=ticks,
        description=description,
    )


def _ledger_rows() -> list[tuple[date, int, str, str, Decimal, int]]:
    """(month, member id, member name, model, cost, count) from the cost ledger."""
    users = get_user_model()._meta.db_table
    with connection.cursor() as cursor:
        # Both names are constants of this code base, not input.
        cursor.execute(
            f"SELECT l.month, l.member_id, u.username, l.model, l.cost_micros, l.n "  # noqa: S608
            f"FROM {LEDGER} l LEFT JOIN {users} u ON u.id = l.member_id WHERE l.n > 0"
        )
        rows = cursor.fetchall()
    return [
        (
            date(int(month[:4]), int(month[5:7]), 1),
            member_id,
            username or REMOVED_MEMBER,
            model,
            Decimal(int(micros)) / MICROS,
            int(n),
        )
        for month, member_id, username, model, micros, n in rows
    ]


def ledger() -> Ledger:
    """The team's costs, from the ledger the database keeps (see ledger.py): one small query
    whatever the number of requests."""
    rows = _ledger_rows()
    per_month: dict[date, dict[str, tuple[Decimal, int]]] = {}
    model_sums: dict[str, Decimal] = {}
    for month, _member, _name, model, amount, count in rows:
        model = model or UNKNOWN_MODEL
        cost, n = per_month.setdefault(month, {}).get(model, (Decimal(0), 0))
        per_month[month][model] = (cost + amount, n + count)
        model_sums[model] = model_sums.get(model, Decimal(0)) + amount
    if not per_month:
        return Ledger()
    # The most expensive model first, so the chart's bottom segments are the big ones.
    names = sorted(model_sums, key=lambda m: (-model_sums[m], m))
    series = [Series(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(names)]

    per_member: dict[tuple[int | None, str], dict[str, tuple[Decimal, int]]] = {}
    for _month, member, name, model, amount, count in rows:
        who = (member or None, name)
        model = model or UNKNOWN_MODEL
        cost, n = per_member.setdefault(who, {}).get(model, (Decimal(0), 0))
        per_member[who][model] = (cost + amount, n + count)

    months = _pivot(
        {m.strftime("%B %Y"): per_month[m] for m in sorted(per_month, reverse=True)}, names
    )
    members = _pivot({who[1]: groups for who, groups in per_member.items()}, names)
    members.sort(key=lambda row: (-row.total, row.label))
    chart_input = {m: {k: v[0] for k, v in groups.items()} for m, groups in per_month.items()}
    return Ledger(
        models=series,
        months=months,
        members=members,
        model_totals=[model_sums[n] for n in names],
        total=sum(model_sums.values(), Decimal(0)),
        count=sum(row.count for row in months),
        chart=build_chart(chart_input, series),
    )
