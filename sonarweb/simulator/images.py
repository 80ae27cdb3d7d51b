"""Small generated pictures for the simulator's answers, so a demo gallery shows real images.

``image_path(slug, index, token, width, height, title)`` is the path an answer's ``image_url``
uses when the simulator knows its own base URL; ``render_svg(name, title)`` draws the picture
as SVG, and ``raster.render_raster(name, title, "png" or "jpg")`` as PNG or JPEG. Everything
the picture needs is in the URL (the size in the name, the title in the query string), so an
answer archived during an earlier run still shows its images.

The SVG is static: no script, no external reference, no style attribute; every piece of text
is XML-escaped. It is drawn from a hash of the name, so one URL always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

PREFIX = "/_sim/images/"
# Path segments of a name: what corpus.py produces (a topic slug, then "NN-token-WxH").
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}(?:/[A-Za-z0-9_-]{1,64}){0,3}$")
SIZE = re.compile(r"-(\d{1,5})x(\d{1,5})$")
DEFAULT_SIZE = (800, 600)
MIN_SIDE, MAX_SIDE = 16, 4000
MAX_TITLE = 200

# Calm, readable pairs: (background top, background bottom, ink, accent, accent light)
_PALETTES = (
    ("#eef4fb", "#dce8f5", "#1d3557", "#2f6db0", "#9cc0e6"),
    ("#f1f7f2", "#dcecdf", "#1e3d2b", "#2e8b57", "#a6d5b5"),
    ("#fbf4ec", "#f3e2cf", "#4a2c12", "#c46a1b", "#efc39a"),
    ("#f5f1fa", "#e6ddf2", "#33204d", "#7048a8", "#c6b2e3"),
    ("#eef7f8", "#d8ecee", "#173f45", "#20808d", "#9fd3d9"),
    ("#faf0f1", "#f2dcdf", "#4d1f27", "#b23a48", "#e9aab3"),
)


def image_path(
    slug: str,
    index: int,
    token: str,
    width: int,
    height: int,
    title: str,
    extension: str = "png",
) -> str:
    """The path (with query) of one generated image; the caller prefixes the base URL.

    ``extension`` is ``png`` (what answers use: the image archive keeps raster images only),
    ``jpg`` or ``svg``.
    """
    name = f"{slug}/{index:02d}-{token}-{int(width)}x{int(height)}"
    return f"{PREFIX}{name}.{extension}?title={quote(title, safe='')}"


def size_of(name: str) -> tuple[int, int]:
    """Width and height from a name ending in ``-WxH``, clamped to sane bounds."""
    match = SIZE.search(name)
    if match is None:
        return DEFAULT_SIZE
    width, height = (min(max(int(v), MIN_SIDE), MAX_SIDE) for v in match.groups())
    return width, height


def _wrap(text: str, per_line: int, max_lines: int) -> list[str]:
    """Greedy word wrap; what does not fit ends the last line with an ellipsis."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if len(word) > per_line:
            word = word[: per_line - 1] + "…"
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= per_line:
            current = candidate
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines:
            last = lines[-1]
            lines[-1] = (last if len(last) < per_line else last[: per_line - 1].rstrip()) + "…"
            return lines
    if current:
        lines.append(current)
    return lines


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


@dataclass(frozen=True)
class Chart:
    """What a picture shows, in pixels; drawn as SVG here and as PNG/JPEG in raster.py."""

    width: int
    height: int
    palette: tuple[str, str, str, str, str]  # background top, bottom, ink, accent, light
    title: str
    lines: list[str]
    font: int
    pad: int
    chart_left: int
    chart_right: int
    chart_bottom: int
    gridlines: list[float]
    bars: list[tuple[float, float, float, float, bool]]  # x, y, width, height, highlighted
    points: list[tuple[float, float]]  # a line chart when there are no bars

    def text_baseline(self, index: int) -> int:
        return self.pad + round(self.font * 1.25) * index + self.font


def chart(name: str, title: str = "") -> Chart:
    """A deterministic chart-like picture of the size the name says, captioned with title."""
    width, height = size_of(name)
    digest = hashlib.sha256(name.encode()).digest()
    palette = _PALETTES[digest[0] % len(_PALETTES)]
    title = " ".join(title.split())[:MAX_TITLE]

    pad = round(min(width, height) * 0.07)
    font = max(10, round(min(width / 26, height / 12)))
    # Galleries crop thumbnails to 4:3 around the centre: the title stays inside that part.
    safe = min(width, round(height * 4 / 3))
    per_line = max(8, int((safe - 2 * pad) / (font * 0.6)))
    lines = _wrap(title, per_line, 2) if title else []
    text_bottom = pad + len(lines) * round(font * 1.25)
    chart_top = text_bottom + pad * (1 if lines else 0)
    chart_bottom = height - pad
    chart_left, chart_right = pad, width - pad
    chart_h = max(1, chart_bottom - chart_top)
    chart_w = max(1, chart_right - chart_left)

    gridlines = [chart_bottom - chart_h * step / 4 for step in range(1, 4)]
    count = 6 + digest[1] % 7
    values = [0.18 + 0.78 * (digest[2 + i] / 255) for i in range(count)]
    bars: list[tuple[float, float, float, float, bool]] = []
    points: list[tuple[float, float]] = []
    if digest[1] % 2 == 0:
        slot = chart_w / count
        bar = slot * 0.62
        for i, value in enumerate(values):
            x = chart_left + slot * i + (slot - bar) / 2
            h = chart_h * value
            bars.append((x, chart_bottom - h, bar, h, i == count - 1 or value == max(values)))
    else:
        step_x = chart_w / (count - 1)
        points = [
            (chart_left + step_x * i, chart_bottom - chart_h * v) for i, v in enumerate(values)
        ]
    return Chart(
        width=width,
        height=height,
        palette=palette,
        title=title,
        lines=lines,
        font=font,
        pad=pad,
        chart_left=chart_left,
        chart_right=chart_right,
        chart_bottom=chart_bottom,
        gridlines=gridlines,
        bars=bars,
        points=points,
    )


def render_svg(name: str, title: str = "") -> bytes:
    """The picture as a static SVG document."""
    c = chart(name, title)
    width, height = c.width, c.height
    top, bottom, ink, accent, light = c.palette
    chart_left, chart_right, chart_bottom = c.chart_left, c.chart_right, c.chart_bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(c.title)}</title>" if c.title else "",
        '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        "</linearGradient></defs>",
        f'<rect width="{width}" height="{height}" fill="url(#bg)"/>',
    ]
    for y in c.gridlines:
        parts.append(
            f'<line x1="{chart_left}" y1="{_num(y)}" x2="{chart_right}" y2="{_num(y)}" '
            f'stroke="{ink}" stroke-opacity="0.12" stroke-width="{max(1, width // 600)}"/>'
        )
    parts.append(
        f'<line x1="{chart_left}" y1="{chart_bottom}" x2="{chart_right}" y2="{chart_bottom}" '
        f'stroke="{ink}" stroke-opacity="0.45" stroke-width="{max(1, width // 400)}"/>'
    )
    for x, y, bar, h, highlighted in c.bars:
        fill = accent if highlighted else light
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar)}" '
            f'height="{_num(h)}" rx="{_num(min(bar / 6, 8))}" fill="{fill}"/>'
        )
    if c.points:
        line = " ".join(f"{_num(x)},{_num(y)}" for x, y in c.points)
        area = f"{chart_left},{chart_bottom} {line} {chart_right},{chart_bottom}"
        stroke = max(2, round(width / 240))
        parts.append(f'<polygon points="{area}" fill="{light}" fill-opacity="0.55"/>')
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{accent}" stroke-width="{stroke}" '
            'stroke-linejoin="round" stroke-linecap="round"/>'
        )
        for x, y in c.points:
            parts.append(
                f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{stroke * 1.6:.1f}" fill="{accent}"/>'
            )
    for index, text in enumerate(c.lines):
        parts.append(
            f'<text x="{_num(width / 2)}" y="{c.text_baseline(index)}" text-anchor="middle" '
            f'fill="{ink}" font-size="{c.font}" font-weight="600" '
            f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">'
            f"{escape(text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts).encode()
