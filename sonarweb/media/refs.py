"""Which images an answer shows: the gallery, and images written inline in its Markdown.

Pure: takes a parsed ``Completion`` and returns ``ImageRef``s in the order the page shows
them, one per URL. The URL of an inline image is the ``src`` the renderer emits (markdown-it
normalises link destinations, and so does this parse), so the renderer can look up the
local copy of each ``<img>`` by the same string.
"""

from __future__ import annotations

from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.token import Token
from mdit_py_plugins.footnote import footnote_plugin

from sonarweb.answers.content import json_answer, split_reasoning
from sonarweb.answers.sources import http_url
from sonarweb.perplexity.payload import Completion

_TEXT = ("text", "code_inline")
GALLERY = "gallery"
INLINE = "inline"

# Tables and footnotes can hold images; the rest of the renderer's plugins cannot.
_MD = MarkdownIt("commonmark", {"html": False}).enable(["table"]).use(footnote_plugin)


def normalize_link(destination: str) -> str:
    """A Markdown link destination as written -> the URL the parser (and renderer) uses."""
    return _MD.normalizeLink(unescapeAll(destination))


@dataclass(frozen=True)
class ImageRef:
    url: str
    kind: str = GALLERY
    caption: str = ""
    origin_url: str = ""
    width: int | None = None
    height: int | None = None


def _walk(tokens: list[Token]) -> list[Token]:
    found: list[Token] = []
    for token in tokens:
        if token.type == "image":
            found.append(token)
        if token.children:
            found.extend(_walk(token.children))
    return found


def markdown_images(text: str) -> list[ImageRef]:
    """Inline images in one Markdown text, in reading order."""
    refs = []
    for token in _walk(_MD.parse(text, {})):
        url = http_url(str(token.attrGet("src") or ""))
        if url is None:
            continue
        alt = " ".join("".join(c.content for c in token.children or () if c.type in _TEXT).split())
        title = " ".join(str(token.attrGet("title") or "").split())
        refs.append(ImageRef(url=url, kind=INLINE, caption=alt or title))
    return refs


def image_refs(completion: Completion) -> list[ImageRef]:
    """Every image the rendered answer would load: gallery first, then inline images of the
    answer and of its reasoning. A URL that appears twice is one ref (the first)."""
    refs: list[ImageRef] = []
    for image in completion.images:
        url = http_url(image.image_url)
        if url is None:
            continue
        refs.append(
            ImageRef(
                url=url,
                kind=GALLERY,
                caption=" ".join(image.title.split()),
                origin_url=http_url(image.origin_url) or "",
                width=image.width,
                height=image.height,
            )
        )
    split = split_reasoning(completion.content or "")
    texts = [split.answer] if json_answer(split.answer) is None else []
    for text in [*texts, *split.thoughts]:
        refs.extend(markdown_images(text))
    unique: dict[str, ImageRef] = {}
    for ref in refs:
        unique.setdefault(ref.url, ref)
    return list(unique.values())
