"""A portable archive of one answer: a .zip that reads offline with the look of the page.

It holds ``answer.md`` (image links pointing at the bundled files), ``answer.json`` exactly as
received, ``images/<sha256>.webp`` and ``index.html``, which inlines the answer's CSS (the
page's Content-Security-Policy governs pages the server serves; this is a file) and names
the images relatively, so it opens from ``file://`` and loads nothing from anywhere else.
Images the archive does not have become a caption in place of the picture: never a hot link.

``build_bundle`` takes everything as arguments; ``stored_bundle_images`` reads an answer's
archived images from the database and the media storage.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape, unescape
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from .integrity import file_missing
from .links import team_image_url
from .models import AnswerImage, ImageKind, ImageStatus
from .refs import normalize_link
from .store import open_rendition

STYLESHEETS = ("css/app.css", "css/team.css", "css/answer.css")
# Zip entries carry a date; a fixed one makes the same answer give the same bytes.
EPOCH = (1980, 1, 1, 0, 0, 0)

_ATTRIBUTE = re.compile(r'\b(src|href)="([^"]*)"')
_IMG = re.compile(r"<img\b[^>]*>")
_ALT = re.compile(r'\balt="([^"]*)"')
# ![alt](destination "title"): the destination is <...> or runs to whitespace or ")".
_MD_IMAGE = re.compile(r"(!\[(?:[^\]\\]|\\.)*\]\(\s*)(<[^>\n]*>|[^\s)]+)")
# [label]: destination, for reference-style images.
_MD_DEFINITION = re.compile(r"(?m)^( {0,3}\[[^\]\n]+\]:[ \t]*)(<[^>\n]*>|\S+)")


@dataclass(frozen=True)
class BundleImage:
    sha256: str  # of the full rendition: the file is images/<sha256>.webp
    source_url: str  # the address the answer names
    data: bytes
    kind: str = ImageKind.GALLERY
    caption: str = ""
    origin_url: str = ""
    # Other addresses the rendered HTML may use for this picture (its thumbnail's, say).
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"images/{self.sha256}.webp"


def stored_bundle_images(tracked_id: int) -> list[BundleImage]:
    """The archived images of one answer, read from the media storage."""
    rows = (
        AnswerImage.objects.filter(tracked_id=tracked_id, status=ImageStatus.STORED)
        .exclude(image=None)
        .select_related("image")
        .order_by("position")
    )
    images = []
    for row in rows:
        try:
            with open_rendition(row.image.sha256) as file:
                data = file.read()
        except FileNotFoundError:
            # Restored without the media folder? Fetched again, then the bundle is rebuilt.
            file_missing(row.image.sha256)
            continue
        images.append(
            BundleImage(
                sha256=row.image.sha256,
                source_url=row.url,
                data=data,
                kind=row.kind,
                caption=row.caption,
                origin_url=row.origin_url,
                aliases=(
                    team_image_url(row.image.sha256),
                    team_image_url(row.image.thumb_sha256),
                ),
            )
        )
    return images


def _addresses(images: Iterable[BundleImage]) -> dict[str, str]:
    local: dict[str, str] = {}
    for image in images:
        for address in (image.source_url, *image.aliases):
            local.setdefault(address, image.name)
    return local


def offline_html(html: str, local: dict[str, str]) -> str:
    """The answer fragment with images pointing at bundled files, and no remote image left.

    The fragment is sanitized HTML (nh3): attribute values are double-quoted and escaped.
    """

    def attribute(match: re.Match[str]) -> str:
        name, value = match.groups()
        target = local.get(unescape(value))
        return f'{name}="{escape(target)}"' if target else match.group(0)

    def image(match: re.Match[str]) -> str:
        # Local files load at once: a printed or saved copy then has every picture.
        tag = _ATTRIBUTE.sub(attribute, match.group(0).replace(' loading="lazy"', ""))
        src = re.search(r'\bsrc="([^"]*)"', tag)
        if src and unescape(src.group(1)).startswith("images/"):
            return tag
        alt = _ALT.search(tag)
        caption = alt.group(1) if alt else "Image"
        return f'<span class="image-missing">[{caption or "Image"}: not archived]</span>'

    html = _IMG.sub(image, html)
    return _ATTRIBUTE.sub(attribute, html)


def local_markdown_images(text: str, local: dict[str, str]) -> str:
    """Markdown whose images point at the archive's copies (``local``: the address the answer
    names -> the copy's); an image with no copy becomes a plain link, which a Markdown viewer
    does not load."""

    def destination(match: re.Match[str]) -> str:
        lead, raw = match.groups()
        target = local.get(normalize_link(raw[1:-1] if raw.startswith("<") else raw))
        if target:
            return f"{lead}{target}"
        return match.group(0).removeprefix("!")

    text = _MD_IMAGE.sub(destination, text)
    return _MD_DEFINITION.sub(destination, text)


def offline_markdown(text: str, images: Sequence[BundleImage]) -> str:
    """answer.md with its images pointing at the bundled files, and the gallery appended."""
    text = local_markdown_images(text, _addresses(images))
    gallery = [i for i in images if i.kind == ImageKind.GALLERY]
    if not gallery:
        return text
    lines = ["", "## Images", ""]
    for image in gallery:
        caption = " ".join(image.caption.split()).replace("[", "\\[").replace("]", "\\]")
        lines.append(f"![{caption}]({image.name})")
        if image.origin_url:
            lines.append(f"From <{image.origin_url}>")
        lines.append("")
    return text.rstrip("\n") + "\n" + "\n".join(lines)


def bundle_css() -> str:
    """The stylesheets a public answer page uses, read from the static files."""
    parts = []
    for name in STYLESHEETS:
        path = finders.find(name)
        if not path and settings.STATIC_ROOT:
            path = str(Path(settings.STATIC_ROOT) / name)
        try:
            parts.append(Path(str(path)).read_text(encoding="utf-8"))
        except (OSError, TypeError):
            continue
    parts.append(".image-missing { color: var(--muted); font-style: italic; }")
    return "\n".join(parts).replace("</", "<\\/")


def build_bundle(
    *,
    title: str,
    markdown: str,
    raw_json: str,
    answer_html: str,
    images: Sequence[BundleImage],
    facts: Sequence[tuple[str, str]] = (),
    folder: str = "answer",
    when: datetime | None = None,
) -> bytes:
    """The .zip for one answer; see the module docstring. ``facts`` are (label, value) rows
    for the header (request id, model, completion time); ``folder`` names the zip's root."""
    local = _addresses(images)
    page = render_to_string(
        "media/bundle_index.html",
        {
            "title": title,
            "facts": facts,
            "css": bundle_css(),
            "answer_html": offline_html(answer_html, local),
        },
    )
    stamp = when.timetuple()[:6] if when and when.year >= 1980 else EPOCH
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        files = {
            "index.html": (page.encode(), zipfile.ZIP_DEFLATED),
            "answer.md": (offline_markdown(markdown, images).encode(), zipfile.ZIP_DEFLATED),
            "answer.json": (raw_json.encode("utf-8", "surrogatepass"), zipfile.ZIP_DEFLATED),
        }
        for image in images:
            # WebP is compressed already; the same picture twice is one file.
            files.setdefault(image.name, (image.data, zipfile.ZIP_STORED))
        for name, (data, compression) in files.items():
            entry = zipfile.ZipInfo(f"{folder}/{name}", date_time=stamp)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data, compress_type=compression)
    return out.getvalue()
