"""Everything around the answer body: contents, sources, reasoning, gallery, related questions,
usage and attachments, each rendered by its template in templates/answers/.

The functions here only gather the values; the markup is in the templates, and Django's
autoescaping escapes every value from the payload there, even though nh3 runs afterwards: the
sanitizer only removes what is dangerous, escaping keeps a title like ``a <b> c`` as text.

The templates have an engine of their own (``ENGINE``): the answers package renders outside a
configured Django project too (bench/render_bench.py, scripts), and its loader lets the
templates be indented without putting whitespace into the fragment (``CompactLoader``). It
caches them for the life of the process: after editing one, restart (runserver's reloader
does not watch this engine). Values reach the templates as strings in dicts: that needs no
settings (numbers would be localized) and keeps the source list, the hot loop, quick.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from django.template import Engine, Origin
from django.template.loaders import filesystem
from django.utils.safestring import SafeString, mark_safe

from sonarweb.answers.citations import Backref
from sonarweb.answers.images import ImageMap, local_img, placeholder
from sonarweb.answers.markdown import Heading, render_note
from sonarweb.answers.sources import Source, domain_of, http_url
from sonarweb.perplexity.payload import ContentChunk, Image, ReasoningStep, Usage

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"
_LINE_BREAK = re.compile(r"\n[ \t]*")


class CompactLoader(filesystem.Loader):
    """Template files less each line break and the indentation that follows it, so markup
    can be laid out readably and still add no whitespace between tags (which would show up
    in the text of table rows and links). Done once per template, not at every render."""

    def get_contents(self, origin: Origin) -> str:
        return _LINE_BREAK.sub("", super().get_contents(origin))


ENGINE = Engine(
    dirs=[str(TEMPLATE_DIR)],
    loaders=[("django.template.loaders.cached.Loader", [f"{__name__}.CompactLoader"])],
)


def _render(name: str, context: dict[str, Any]) -> str:
    return ENGINE.render_to_string(f"answers/{name}", context)


def _digits(number: int) -> SafeString:
    """A count or an id number for a template: digits need no escaping, and skipping it
    matters in the source list, which writes thousands of them."""
    return SafeString(f"{number:d}")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")


def _date(source: Source) -> dict[str, Any]:
    """The card's date: published, else updated; a <time> when it is machine-readable."""
    value = source.date or source.updated
    iso = bool(_ISO_DATE.match(value))
    return {
        "date": value,
        "date_iso": iso,
        "date_text": value[:10] if iso else value,
        "date_prefix": "updated " if value and not source.date else "",
    }


def toc(headings: Sequence[Heading], extra: Sequence[tuple[str, str]] = ()) -> str:
    """Contents for answers with three or more headings; deep levels would only add noise.

    ``extra`` lists the fragment's own sections (id, name) after the answer's headings, so a
    reader finds the sources of a long report without scrolling past it. The list sits in a
    ``<details>``: closed in the markup so a phone shows one line, not thousands of pixels,
    before the text; answer.css shows it on wide screens and answer.js opens it there.
    """
    if len(headings) < 3:
        return ""
    top = min(h.level for h in headings)
    items = [
        {"depth": _digits(h.level - top), "slug": h.slug, "text": h.text or h.slug}
        for h in headings
        if h.level - top < 3
    ]
    return _render("_toc.html", {"headings": items, "sections": extra})


# Back-links a source card shows before a disclosure holds the rest (one more is shown rather
# than hidden behind a control of its own size).
BACKLINKS_SHOWN = 6


def _card(source: Source, cited: bool, refs: Sequence[Backref]) -> dict[str, Any]:
    # Places in reading order: the id number of the marker group there, and the ordinal.
    places = [{"cite": _digits(r.group), "n": _digits(i)} for i, r in enumerate(refs, 1)]
    split = BACKLINKS_SHOWN if len(places) > BACKLINKS_SHOWN + 1 else len(places)
    return {
        "number": _digits(source.number),
        "cited": cited,
        "label": source.label,
        "href": source.href,
        "title": source.title,
        "domain": source.domain,
        **_date(source),
        "snippet": source.snippet,
        "places": _digits(len(places)) if places else "",
        "shown": places[:split],
        "more": places[split:],
        "hidden": _digits(len(places) - split),
    }


def sources(items: Sequence[Source], cited: set[int], refs: Mapping[int, Sequence[Backref]]) -> str:
    """The source cards, each with links back to the places in the text that cite it."""
    if not items:
        return ""
    cards = [_card(s, s.number in cited, refs.get(s.number, ())) for s in items]
    return _render("_sources.html", {"cards": cards, "count": _digits(len(items))})


# The source strip above a long answer: how many hosts it names, and from how many sources on
# an answer is long enough to want one (below that, the cards are a short scroll away).
STRIP_HOSTS = 8
STRIP_MIN_SOURCES = 5


def source_strip(items: Sequence[Source], refs: Mapping[int, Sequence[Backref]], total: int) -> str:
    """The sources at a glance: the hosts of the listed sources, those the text cites first in
    reading order, then the others; each host once (with how many of the listed sources it
    gave) and a link to its first card."""
    if total < STRIP_MIN_SOURCES:
        return ""
    first = {n: min(r.group for r in places) for n, places in refs.items() if places}
    cited = sorted((s for s in items if s.number in first), key=lambda s: first[s.number])
    ordered = cited + [s for s in items if s.number not in first]
    hosts: dict[str, dict[str, Any]] = {}
    for source in ordered:
        if not source.domain:
            continue
        # The first source from a host names it and links to its card.
        host = {"name": source.domain, "number": _digits(source.number), "title": source.title}
        hosts.setdefault(source.domain, {**host, "sources": 0})["sources"] += 1
    shown = list(hosts.values())[:STRIP_HOSTS]
    if not shown:
        return ""
    for host in shown:
        host["count"] = _digits(host["sources"]) if host["sources"] > 1 else ""
    return _render("_source_strip.html", {"hosts": shown, "total": _digits(total)})


_STEP_NAMES = {
    "web_search": "Web search",
    "fetch_url_content": "Read pages",
    "execute_python": "Ran code",
    "agent_progress": "Progress",
}


def _step(step: ReasoningStep) -> dict[str, Any] | None:
    """A reasoning step's values, or None when it has nothing to show."""
    name = ""
    if step.type:
        name = _STEP_NAMES.get(step.type, step.type.replace("_", " ").capitalize())
    values = {
        "kind": re.sub(r"[^a-z0-9_-]", "", step.type.lower()),
        "name": name,
        "thought": step.thought,
        "keywords": step.search_keywords,
        "urls": [(url, http_url(url)) for url in step.fetched_urls],
        "code": step.code,
        "result": step.code_result,
    }
    shown = ("name", "thought", "keywords", "urls", "code", "result")
    return values if any(values[key] for key in shown) else None


def reasoning(
    thoughts: Sequence[str], steps: Sequence[ReasoningStep], images: ImageMap | None = None
) -> str:
    """A closed ``<details>``: reasoning is for the curious, not in the way of the answer."""
    think = [
        # The markdown renderer's HTML, escaped there; nh3 cleans it with the whole fragment.
        mark_safe(render_note(t, doc_id=f"think{i}", images=images))  # noqa: S308
        for i, t in enumerate(thoughts, 1)
    ]
    listed = [values for values in map(_step, steps) if values is not None]
    if not think and not listed:
        return ""
    count = sum(1 for s in steps if s.thought or s.type)
    return _render(
        "_reasoning.html",
        {"thoughts": think, "steps": listed, "step_count": str(count) if count > 1 else ""},
    )


def _gallery_item(image: Image, copies: ImageMap, index: int) -> dict[str, Any] | None:
    src = http_url(image.image_url)
    if src is None:
        return None
    origin = http_url(image.origin_url) or src
    domain = domain_of(origin)
    title = " ".join(image.title.split())
    alt = title or (f"Image from {domain}" if domain else "Image")
    item: dict[str, Any] = {"title": title, "domain": domain, "thumb": "", "placeholder": ""}
    copy = copies.get(image.image_url)
    # images.py writes the <img> of a copy, and the placeholder of an image without one, for
    # the answer's inline images too; both escape what they are given.
    if copy is None or not copy.stored:
        item["placeholder"] = mark_safe(placeholder(src, alt, origin, copy))  # noqa: S308
        return item
    thumb = mark_safe(local_img(copy, alt, thumb=True))  # noqa: S308
    tip = domain or alt
    item.update(thumb=thumb, origin=origin, index=_digits(index), full=copy.full_url, tip=tip)
    return item


def gallery(images: Sequence[Image], copies: ImageMap | None = None, *, inner: bool = False) -> str:
    """Thumbnails of the archive's copies, linking to the page each image came from; answer.js
    opens the full copy in a lightbox instead. An image with no copy is a placeholder.
    ``inner``: only what goes inside the section (a page swaps it in once images arrive)."""
    items = []
    shown = 0  # the lightbox's index counts only the pictures it can show
    for image in images:
        item = _gallery_item(image, copies or {}, shown)
        if item is None:
            continue
        items.append(item)
        if item["thumb"]:
            shown += 1
    if not items:
        return ""
    return _render("_gallery.html", {"items": items, "inner": inner})


def related(questions: Iterable[str], followup_url: str | None) -> str:
    """Related questions; each with a link that starts research on it, unless the page's
    reader cannot start research (``followup_url`` None)."""
    items = []
    for question in questions:
        text = " ".join(question.split())
        if not text:
            continue
        href = ""
        if followup_url is not None:
            joiner = "&" if "?" in followup_url else "?"
            href = f"{followup_url}{joiner}q={quote_plus(text)}"
        items.append({"text": text, "href": href})
    if not items:
        return ""
    return _render("_related.html", {"questions": items})


_FOUR_PLACES = Decimal("0.0001")


def usd(value: float) -> str:
    """Dollars to four decimals in every cell of the usage table, as the rest of the site
    writes costs (``floatformat:4``, whose rounding this follows): one precision lines the
    right-aligned column up, and the total reads the same as the page's header."""
    if not math.isfinite(value):
        return "n/a"
    sign = "-" if value < 0 else ""
    amount = Decimal(repr(abs(value))).quantize(_FOUR_PLACES, ROUND_HALF_UP)
    if not amount and value:
        return f"{sign}<$0.0001"
    return f"{sign}${amount:,.4f}"


# Rows pair a token count with the cost field charged for it. Prompt and completion tokens
# make up the total; the other counts are outside it (search queries are not even tokens).
_TOTALLED_ROWS = (
    ("Prompt", "prompt_tokens", "input_tokens_cost"),
    ("Completion", "completion_tokens", "output_tokens_cost"),
)
_OTHER_ROWS = (
    ("Citations", "citation_tokens", "citation_tokens_cost"),
    ("Reasoning", "reasoning_tokens", "reasoning_tokens_cost"),
    ("Cache reads", "cache_read_tokens", "cache_read_cost"),
    ("Cache writes", "cache_creation_tokens", "cache_creation_cost"),
    ("Search queries", "num_search_queries", "search_queries_cost"),
    ("Page fetches", "num_page_fetches", "fetch_url_cost"),
    ("Tool calls", None, "tool_calls_cost"),
    ("Requests", None, "request_cost"),
)
_REASONING_PART = "Reasoning (part of completion)"


def _row(label: str, tokens: int | None, cost: float | None, kind: str = "") -> dict[str, str]:
    return {
        "label": label,
        "tokens": f"{tokens:,}" if tokens is not None else "",
        "cost": usd(cost) if cost is not None else "",
        "kind": kind,
    }


def _reasoning_is_part(info: Usage) -> bool:
    """Agent runs count reasoning within the output tokens; Sonar billed it on its own."""
    reasoning_tokens, completion = info.reasoning_tokens, info.completion_tokens
    if reasoning_tokens is None or completion is None or "reasoning_tokens_cost" in info.cost:
        return False
    return reasoning_tokens <= completion


def _usage_rows(info: Usage) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    part = _reasoning_is_part(info)
    for label, tokens_field, cost_field in _TOTALLED_ROWS:
        tokens, cost = getattr(info, tokens_field), info.cost.get(cost_field)
        if tokens is not None or cost is not None:
            rows.append(_row(label, tokens, cost))
    if part:
        rows.append(_row(_REASONING_PART, info.reasoning_tokens, None, "part"))
    if info.total_tokens is not None:
        rows.append(_row("Tokens in total", info.total_tokens, None, "subtotal"))
    known = {"total_cost", *(field for _, _, field in _TOTALLED_ROWS + _OTHER_ROWS)}
    for label, tokens_field, cost_field in _OTHER_ROWS:
        if part and tokens_field == "reasoning_tokens":
            continue
        tokens = getattr(info, tokens_field) if tokens_field else None
        cost = info.cost.get(cost_field)
        if tokens is not None or cost is not None:
            rows.append(_row(label, tokens, cost))
    for key in sorted(info.cost.keys() - known):
        label = key.removesuffix("_cost").replace("_", " ").capitalize() or key
        rows.append(_row(label, None, info.cost[key]))
    if "total_cost" in info.cost:
        rows.append(_row("Total cost", None, info.cost["total_cost"], "total"))
    return rows


def usage(info: Usage | None) -> str:
    if info is None:
        return ""
    rows = _usage_rows(info)
    if not rows:
        return ""
    return _render("_usage.html", {"rows": rows, "context_size": info.search_context_size})


CHUNK_NAMES = {"image_url": "Image", "file_url": "File", "pdf_url": "PDF", "video_url": "Video"}


def _attachment(chunk: ContentChunk) -> dict[str, str] | None:
    kind = CHUNK_NAMES.get(chunk.type, chunk.type.replace("_", " ").capitalize())
    if chunk.url:
        href = http_url(chunk.url) or ""
        name = chunk.name or (chunk.url if href else "embedded content")
        return {"kind": kind, "name": name, "href": href, "text": ""}
    if chunk.text:
        return {"kind": kind, "name": "", "href": "", "text": chunk.text}
    return None


def attachments(chunks: Sequence[ContentChunk]) -> str:
    """Non-text content chunks, as links: embedding untrusted media is not worth the risk."""
    items = [item for item in map(_attachment, chunks) if item is not None]
    if not items:
        return ""
    return _render("_attachments.html", {"items": items})
