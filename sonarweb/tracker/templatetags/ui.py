"""Template helpers for how pages read: times that print as dates, a chart drawn for phones,
how a status badge and a model are shown, long lines of markup laid out on several."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django import template
from django.template.base import Node, NodeList, Parser, TextNode, Token
from django.template.context import Context
from django.template.defaultfilters import date as date_filter
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from ..costs.totals import Chart
from ..models import STATUS_LABELS, TrackedRequest

register = template.Library()

LINE_BREAK = re.compile(r"\n[ \t]*")


JUST_NOW_SECONDS = 10


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, as a person says it: "just now", "12 s ago", "5 min ago", then the
    largest unit alone ("3 hours ago", "2 days ago"). Never "0 minutes ago"."""
    if value is None:
        return ""
    now = now or timezone.now()
    seconds = (now - value).total_seconds()
    if seconds < JUST_NOW_SECONDS:
        # A clock a little ahead of the server's reads as now, too.
        return "just now"
    # A number and its unit never part at a line break (timesince does the same).
    if seconds < 60:
        return f"{int(seconds)}\xa0s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}\xa0min ago"
    return f"{timesince(value, now, depth=1)} ago"


@register.simple_tag
def when(value: datetime | None) -> SafeString | str:
    """``3 min ago`` on screen, ``2026-07-24 14:02 UTC`` on paper and on hover.

    A printed page is read later, when "3 min ago" no longer means anything.
    """
    if value is None:
        return "—"
    absolute = date_filter(value, "Y-m-d H:i T")
    return format_html(
        '<time datetime="{}" title="{}"><span class="when-rel">{}</span>'
        '<span class="when-abs">{}</span></time>',
        value.isoformat(),
        absolute,
        ago(value),
        absolute,
    )


@register.filter
def badge_class(status: str) -> str:
    """The badge's CSS class: one per status in sonarweb's vocabulary. A status upstream
    invented since is shown as itself, styled as still running (it is polled like one)."""
    status = str(status or "")
    if status in STATUS_LABELS:
        return f"badge-{status.lower()}"
    return "badge-other"


@register.filter
def model_label(tracked: TrackedRequest) -> str:
    """The model as stored. While an Agent run started here runs, the stored value is its
    preset's name (upstream names the resolved model only once the run completes), so it is
    called a preset then, and after a cancel or failure that leaves it so."""
    options = tracked.options if isinstance(tracked.options, dict) else {}
    preset = options.get("preset")
    running = not tracked.is_finished
    if isinstance(preset, str) and preset and (running or tracked.model == preset):
        return f"preset {preset}"
    return tracked.model


# The phone chart, in SVG user units: drawn 360 wide, it shows at about its own size on a
# 390 px screen, so its 14-unit labels read at about 12 px.
NARROW_WIDTH = 360
NARROW_LEFT = 80
NARROW_RIGHT = 70
NARROW_ROW = 30
NARROW_BAR = 18
NARROW_TOP = 8


@dataclass(frozen=True)
class NarrowSegment:
    x: float
    width: float
    fill: str
    title: str


@dataclass(frozen=True)
class NarrowBar:
    label: str
    total_label: str
    y: float
    text_y: float
    total_x: float
    segments: list[NarrowSegment]


@dataclass(frozen=True)
class NarrowChart:
    width: int
    height: int
    left: int
    bottom: float
    bars: list[NarrowBar]


@register.filter
def narrow_chart(chart: Chart | None) -> NarrowChart | None:
    """The same months and amounts as horizontal bars, one row per month, for phones.

    Derived from the wide chart's geometry (segment heights are proportional to amounts),
    so both always show the same figures.
    """
    if chart is None or not chart.bars:
        return None
    stacks = [sum(s.height for s in bar.segments) for bar in chart.bars]
    peak = max(stacks) or 1.0
    plot = NARROW_WIDTH - NARROW_LEFT - NARROW_RIGHT
    bars = []
    for i, (bar, stack) in enumerate(zip(chart.bars, stacks, strict=True)):
        y = NARROW_TOP + i * NARROW_ROW
        x = float(NARROW_LEFT)
        segments = []
        # The wide chart stacks upwards from the most expensive model; left to right here.
        for seg in bar.segments:
            width = round(seg.height / peak * plot, 2)
            segments.append(NarrowSegment(round(x, 2), width, seg.fill, seg.title))
            x += width
        bars.append(
            NarrowBar(
                label=bar.label,
                total_label=bar.total_label if bar.segments else "",
                y=y,
                text_y=y + NARROW_BAR / 2,
                total_x=round(NARROW_LEFT + stack / peak * plot + 6, 2),
                segments=segments,
            )
        )
    height = NARROW_TOP * 2 + len(bars) * NARROW_ROW
    return NarrowChart(NARROW_WIDTH, height, NARROW_LEFT, height - NARROW_TOP, bars)


class CompactNode(Node):
    child_nodelists = ("nodelist",)

    def __init__(self, nodelist: NodeList) -> None:
        self.nodelist = nodelist

    def render(self, context: Context) -> str:
        return self.nodelist.render(context)


@register.tag
def compact(parser: Parser, token: Token) -> CompactNode:
    """``{% compact %}…{% endcompact %}``: the template text inside, less each line break and
    the indentation after it, as the answer templates are loaded (answers/sections.py). A
    sentence built from many tags can then be written on several lines without adding
    whitespace where the page (and what tests read of it) has none: write a space where the
    output needs one. Only the template's own text changes, once, when it is compiled;
    values rendered into it keep their line breaks."""
    nodelist = parser.parse(("endcompact",))
    parser.delete_first_token()
    for node in nodelist.get_nodes_by_type(TextNode):
        node.s = LINE_BREAK.sub("", node.s)
    return CompactNode(nodelist)
