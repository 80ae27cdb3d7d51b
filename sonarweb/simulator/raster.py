"""The simulator's pictures as PNG or JPEG, drawn with Pillow from the same ``Chart`` as the SVG.

The image archive keeps only raster images (SVG can carry scripts), so answers point at PNGs
by default; the SVG stays available for whoever wants it. Same name, same bytes: the drawing
and the encoders are deterministic.
"""

from __future__ import annotations

from functools import lru_cache
from io import BytesIO

from PIL import Image, ImageDraw, ImageFont

from .images import chart

FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg")}


def _rgb(color: str, alpha: float = 1.0) -> tuple[int, int, int, int]:
    value = color.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return r, g, b, round(255 * alpha)


@lru_cache(maxsize=32)
def render_raster(name: str, title: str = "", extension: str = "png") -> bytes:
    """The picture ``name`` as PNG (``extension="png"``) or JPEG (``"jpg"``)."""
    c = chart(name, title)
    top, bottom, ink, accent, light = c.palette
    mask = Image.linear_gradient("L").resize((c.width, c.height))
    picture = Image.composite(
        Image.new("RGB", (c.width, c.height), _rgb(bottom)[:3]),
        Image.new("RGB", (c.width, c.height), _rgb(top)[:3]),
        mask,
    )
    # RGBA drawing on an RGB picture blends, so translucent fills look as in the SVG.
    draw = ImageDraw.Draw(picture, "RGBA")
    for y in c.gridlines:
        draw.line(
            [(c.chart_left, y), (c.chart_right, y)],
            fill=_rgb(ink, 0.12),
            width=max(1, c.width // 600),
        )
    draw.line(
        [(c.chart_left, c.chart_bottom), (c.chart_right, c.chart_bottom)],
        fill=_rgb(ink, 0.45),
        width=max(1, c.width // 400),
    )
    for x, y, bar, h, highlighted in c.bars:
        draw.rounded_rectangle(
            [x, y, x + bar, y + h],
            radius=min(bar / 6, 8),
            fill=_rgb(accent if highlighted else light),
        )
    if c.points:
        stroke = max(2, round(c.width / 240))
        area = [(c.chart_left, c.chart_bottom), *c.points, (c.chart_right, c.chart_bottom)]
        draw.polygon(area, fill=_rgb(light, 0.55))
        draw.line(c.points, fill=_rgb(accent), width=stroke, joint="curve")
        r = stroke * 1.6
        for x, y in c.points:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=_rgb(accent))
    font = ImageFont.load_default(size=c.font)
    for index, text in enumerate(c.lines):
        draw.text(
            (c.width / 2, c.text_baseline(index)), text, fill=_rgb(ink), font=font, anchor="ms"
        )
    out = BytesIO()
    kind, _mime = FORMATS[extension]
    options = {"optimize": True} if kind == "PNG" else {"quality": 85}
    picture.save(out, kind, **options)
    return out.getvalue()
