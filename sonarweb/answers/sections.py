"""HTML for everything around the answer body: contents, sources, reasoning, gallery,
related questions, usage and attachments.

Every value from the payload goes through ``escape`` here even though nh3 runs afterwards:
the sanitizer only removes what is dangerous, escaping keeps a title like ``a <b> c`` as text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote_plus

from sonarweb.answers.images import ImageMap, local_img, placeholder
from sonarweb.answers.markdown import Heading, render_note
from sonarweb.answers.sources import Source, domain_of, http_url
from sonarweb.perplexity.payload import ContentChunk, Image, ReasoningStep, Usage

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")
_OUT = 'target="_blank" rel="noopener noreferrer"'


def _section(name: str, title: str, body: str) -> str:
    return (
        f'<section class="answer-{name}" id="answer-{name}" '
        f'aria-labelledby="answer-{name}-title">'
        f'<h2 id="answer-{name}-title">{title}</h2>{body}</section>'
    )


def _outbound(url: str, text: str, cls: str = "") -> str:
    """A link that leaves the site, or the bare text when the URL is not http(s)."""
    href = http_url(url)
    if href is None:
        return f'<span class="{cls}">{escape(text)}</span>' if cls else escape(text)
    cls_attr = f' class="{cls}"' if cls else ""
    return f'<a{cls_attr} href="{escape(href)}" {_OUT}>{escape(text)}</a>'


def _date(value: str, cls: str, prefix: str = "") -> str:
    if _ISO_DATE.match(value):
        return f'<time class="{cls}" datetime="{escape(value)}">{prefix}{escape(value[:10])}</time>'
    return f'<span class="{cls}">{prefix}{escape(value)}</span>'


def toc(headings: Sequence[Heading]) -> str:
    """Contents for answers with three or more headings; deep levels would only add noise."""
    if len(headings) < 3:
        return ""
    top = min(h.level for h in headings)
    items = "".join(
        f'<li class="toc-depth-{h.level - top}"><a href="#{escape(h.slug)}">'
        f"{escape(h.text or h.slug)}</a></li>"
        for h in headings
        if h.level - top < 3
    )
    return (
        '<nav class="answer-toc" id="answer-toc" aria-labelledby="answer-toc-title">'
        f'<h2 id="answer-toc-title">Contents</h2><ol>{items}</ol></nav>'
    )


def _source_card(source: Source, cited: bool) -> str:
    classes = "source-card cited" if cited else "source-card"
    meta = []
    if source.domain:
        meta.append(f'<span class="source-domain">{escape(source.domain)}</span>')
    if source.date:
        meta.append(_date(source.date, "source-date"))
    elif source.updated:
        meta.append(_date(source.updated, "source-date", "updated "))
    if cited:
        meta.append('<span class="source-cited">cited</span>')
    snippet = f'<p class="source-snippet">{escape(source.snippet)}</p>' if source.snippet else ""
    return (
        f'<li class="{classes}" id="source-{source.number}" value="{source.number}">'
        f'<span class="source-number" aria-hidden="true">{source.number}</span>'
        f'<span id="source-{source.number}-label" hidden>'
        f"Source {source.number}: {escape(source.label)}</span>"
        f"{_outbound(source.url, source.title, 'source-title')}"
        f'<span class="source-meta">{"".join(meta)}</span>{snippet}</li>'
    )


def sources(items: Sequence[Source], cited: set[int]) -> str:
    if not items:
        return ""
    cards = "".join(_source_card(s, s.number in cited) for s in items)
    count = f' <span class="count">({len(items)})</span>'
    return _section("sources", f"Sources{count}", f'<ol class="source-list">{cards}</ol>')


_STEP_NAMES = {
    "web_search": "Web search",
    "fetch_url_content": "Read pages",
    "execute_python": "Ran code",
    "agent_progress": "Progress",
}


def _step(step: ReasoningStep) -> str:
    kind = re.sub(r"[^a-z0-9_-]", "", step.type.lower())
    parts = []
    if step.type:
        name = _STEP_NAMES.get(step.type, step.type.replace("_", " ").capitalize())
        parts.append(f'<span class="step-kind">{escape(name)}</span>')
    if step.thought:
        parts.append(f'<p class="step-thought">{escape(step.thought)}</p>')
    if step.search_keywords:
        words = "".join(f"<li>{escape(k)}</li>" for k in step.search_keywords)
        label = '<p class="step-label">Searched for</p>'
        parts.append(f'{label}<ul class="step-keywords">{words}</ul>')
    if step.fetched_urls:
        links = "".join(f"<li>{_outbound(u, u)}</li>" for u in step.fetched_urls)
        parts.append(f'<p class="step-label">Read</p><ul class="step-urls">{links}</ul>')
    if step.code:
        parts.append(
            f'<pre class="step-code"><code class="language-python">{escape(step.code)}</code></pre>'
        )
    if step.code_result:
        parts.append(f'<pre class="step-result"><code>{escape(step.code_result)}</code></pre>')
    if not parts:
        return ""
    cls = f"reasoning-step step-{kind}" if kind else "reasoning-step"
    return f'<li class="{cls}">{"".join(parts)}</li>'


def reasoning(
    thoughts: Sequence[str], steps: Sequence[ReasoningStep], images: ImageMap | None = None
) -> str:
    """A closed ``<details>``: reasoning is for the curious, not in the way of the answer."""
    think = "".join(
        f'<div class="reasoning-think">{render_note(t, doc_id=f"think{i}", images=images)}</div>'
        for i, t in enumerate(thoughts, 1)
    )
    items = "".join(_step(s) for s in steps)
    listing = f'<ol class="reasoning-steps">{items}</ol>' if items else ""
    if not think and not listing:
        return ""
    count = sum(1 for s in steps if s.thought or s.type)
    summary = f"Reasoning ({count} steps)" if count > 1 else "Reasoning"
    return (
        '<details class="answer-reasoning" id="answer-reasoning">'
        f"<summary>{summary}</summary>{think}{listing}</details>"
    )


def gallery(images: Sequence[Image], copies: ImageMap | None = None) -> str:
    """Thumbnails of the archive's copies, linking to the page each image came from; answer.js
    opens the full copy in a lightbox instead. An image with no copy is a placeholder."""
    items = []
    for image in images:
        src = http_url(image.image_url)
        if src is None:
            continue
        origin = http_url(image.origin_url) or src
        domain = domain_of(origin)
        title = " ".join(image.title.split())
        alt = title or (f"Image from {domain}" if domain else "Image")
        caption = (
            f'<span class="gallery-caption">{escape(title) if title else ""}'
            f'<span class="gallery-domain">{escape(domain)}</span></span>'
        )
        copy = (copies or {}).get(image.image_url)
        if copy is None or not copy.stored:
            items.append(
                f'<li class="gallery-item gallery-missing">'
                f"{placeholder(src, alt, origin, copy)}{caption}</li>"
            )
            continue
        items.append(
            f'<li class="gallery-item"><a class="gallery-thumb" href="{escape(origin)}" {_OUT} '
            f'data-index="{len(items)}" data-full="{escape(copy.full_url)}" '
            f'title="{escape(domain or alt)}">{local_img(copy, alt, thumb=True)}</a>{caption}</li>'
        )
    if not items:
        return ""
    return _section("gallery", "Images", f'<ul class="gallery">{"".join(items)}</ul>')


def related(questions: Iterable[str], followup_url: str | None) -> str:
    items = []
    for question in questions:
        text = " ".join(question.split())
        if not text:
            continue
        if followup_url is None:
            items.append(f"<li>{escape(text)}</li>")
            continue
        joiner = "&" if "?" in followup_url else "?"
        href = f"{followup_url}{joiner}q={quote_plus(text)}"
        # The question stays text; the follow-up is its own control, which pages for
        # readers who cannot start research (public links) leave out.
        items.append(
            f'<li><span class="related-question">{escape(text)}</span> '
            f'<a class="followup" href="{escape(href)}" aria-label="Research this: '
            f'{escape(text)}">Research this</a></li>'
        )
    if not items:
        return ""
    listing = f'<ul class="related-list">{"".join(items)}</ul>'
    return _section("related", "Related questions", listing)


def usd(value: float) -> str:
    """Dollars with as many decimals as a small cost needs (0.0052 is not 0.01)."""
    if not math.isfinite(value):
        return "n/a"
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount >= 1 or amount == 0:
        return f"{sign}${amount:,.2f}"
    digits = 4 if amount >= 0.01 else 6
    text = f"{amount:.{digits}f}".rstrip("0")
    if text.endswith("."):
        return f"{sign}<$0.000001"
    whole, decimals = text.split(".")
    return f"{sign}${whole}.{decimals.ljust(2, '0')}"


# Rows pair a token count with the cost field charged for it.
_USAGE_ROWS = (
    ("Prompt", "prompt_tokens", "input_tokens_cost"),
    ("Completion", "completion_tokens", "output_tokens_cost"),
    ("Citations", "citation_tokens", "citation_tokens_cost"),
    ("Reasoning", "reasoning_tokens", "reasoning_tokens_cost"),
    ("Search queries", "num_search_queries", "search_queries_cost"),
    ("Requests", None, "request_cost"),
)


_TOTAL = ' class="total"'


def usage(info: Usage | None) -> str:
    if info is None:
        return ""
    rows: list[tuple[str, int | None, float | None]] = []
    known = {"total_cost"}
    for label, tokens_field, cost_field in _USAGE_ROWS:
        tokens = getattr(info, tokens_field) if tokens_field else None
        known.add(cost_field)
        cost = info.cost.get(cost_field)
        if tokens is not None or cost is not None:
            rows.append((label, tokens, cost))
    for key in sorted(info.cost.keys() - known):
        label = key.removesuffix("_cost").replace("_", " ").capitalize() or key
        rows.append((label, None, info.cost[key]))
    if info.total_tokens is not None or "total_cost" in info.cost:
        rows.append(("Total", info.total_tokens, info.cost.get("total_cost")))
    if not rows:
        return ""

    def cell(text: str) -> str:
        return f"<td>{text}</td>" if text else '<td class="none">—</td>'

    body = "".join(
        f'<tr{_TOTAL if label == "Total" else ""}><th scope="row">{escape(label)}</th>'
        f"{cell(f'{tokens:,}' if tokens is not None else '')}"
        f"{cell(escape(usd(cost)) if cost is not None else '')}</tr>"
        for label, tokens, cost in rows
    )
    caption = ""
    if info.search_context_size:
        caption = f"<caption>Search context size: {escape(info.search_context_size)}</caption>"
    table = (
        f'<table class="usage-table">{caption}<thead><tr><th scope="col">Kind</th>'
        f'<th scope="col">Tokens</th><th scope="col">Cost (USD)</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
    return _section("usage", "Usage", table)


_CHUNK_NAMES = {"image_url": "Image", "file_url": "File", "pdf_url": "PDF", "video_url": "Video"}


def attachments(chunks: Sequence[ContentChunk]) -> str:
    """Non-text content chunks, as links: embedding untrusted media is not worth the risk."""
    items = []
    for chunk in chunks:
        kind = _CHUNK_NAMES.get(chunk.type, chunk.type.replace("_", " ").capitalize())
        label = f'<span class="attachment-kind">{escape(kind)}</span> '
        if chunk.url:
            href = http_url(chunk.url)
            name = chunk.name or (chunk.url if href else "")
            if href is None:
                name = name or "embedded content"
                items.append(f"<li>{label}{escape(name)} (not a web link)</li>")
            else:
                items.append(f"<li>{label}{_outbound(href, name)}</li>")
        elif chunk.text:
            text = f'<span class="attachment-text">{escape(chunk.text)}</span>'
            items.append(f"<li>{label}{text}</li>")
    if not items:
        return ""
    listing = f'<ul class="attachment-list">{"".join(items)}</ul>'
    return _section("attachments", "Attachments", listing)
