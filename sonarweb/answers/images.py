"""Images in a rendered answer: the archive's local copy, or a placeholder. Never a hot link.

An answer names images on hosts anyone may run; loading them would send every reader's
address to those hosts, and they rot. The renderer is given the archive's copies, keyed by
the URL exactly as the answer names it (the ``src`` markdown-it produces), and shows either
the copy or a placeholder with the caption, the source's domain, a link to the page it came
from, and why there is no copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from sonarweb.answers.sources import domain_of, http_url

OUTBOUND = 'target="_blank" rel="noopener noreferrer"'


@dataclass(frozen=True)
class ImageCopy:
    """The archive's copy of one image (``full_url`` empty when there is none)."""

    full_url: str = ""
    thumb_url: str = ""
    width: int | None = None
    height: int | None = None
    thumb_width: int | None = None
    thumb_height: int | None = None
    reason: str = ""  # why there is no copy; empty while it is still being fetched

    @property
    def stored(self) -> bool:
        return bool(self.full_url)


ImageMap = Mapping[str, ImageCopy]


def _size(width: int | None, height: int | None) -> str:
    if width and height:
        return f' width="{int(width)}" height="{int(height)}"'
    return ""


def local_img(copy: ImageCopy, alt: str, *, thumb: bool = False, title: str = "") -> str:
    """An <img> of the local copy (the thumbnail in galleries)."""
    src = copy.thumb_url if thumb and copy.thumb_url else copy.full_url
    size = (
        _size(copy.thumb_width, copy.thumb_height)
        if thumb and copy.thumb_url
        else _size(copy.width, copy.height)
    )
    title_attr = f' title="{escape(title)}"' if title else ""
    return f'<img src="{escape(src)}" alt="{escape(alt)}"{size}{title_attr} loading="lazy">'


def placeholder(src: str, alt: str, origin: str, copy: ImageCopy | None) -> str:
    """Where a picture would be: what it showed, where from, and why it is not here."""
    page = http_url(origin) or http_url(src) or ""
    domain = domain_of(page or src)
    if copy is not None and copy.reason:
        why = f"Not archived: {copy.reason}"
    elif copy is not None:
        why = "Being archived; it shows here once it is."
    else:
        why = "Not archived."
    label = alt or (f"Image from {domain}" if domain else "Image")
    link = (
        f' <a class="image-missing-origin" href="{escape(page)}" {OUTBOUND}>'
        f"{escape(domain or 'Source')}</a>"
        if page
        else ""
    )
    # Plain text and a link, not role="img": a picture with a link inside would nest
    # interactive content, and the caption already says what the picture showed.
    return (
        f'<span class="image-missing">'
        f'<span class="image-missing-caption">{escape(label)}</span>{link}'
        f'<span class="image-missing-reason">{escape(why)}</span></span>'
    )
