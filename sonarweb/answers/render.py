"""A completed answer as one sanitized HTML fragment, rendered once and stored.

Fragment layout (classes and ids templates, answer.js and browser tests rely on)::

    article.answer
      nav.answer-toc#answer-toc              only with 3+ headings; details.toc-box > ol
      div.answer-body                        the markdown; sup.cites#cite-n > a.cite[href=#source-n]
                                             div.table-scroll[role=region] > table; pre[tabindex]
      p.answer-note                          when the model hit its length limit
      section.answer-attachments             non-text content chunks, as links
      section.answer-gallery                 ul.gallery > li.gallery-item > a.gallery-thumb > img
      section.answer-sources#answer-sources  ol.source-list > li.source-card#source-n[.cited]
                                             with div.source-cited: a.backlink[href=#cite-n] per
                                             citing passage, past six in details.backlinks-more
      section.answer-related                 ul.related-list > li > a.followup
      details.answer-reasoning               think blocks and reasoning steps, closed
      section.answer-usage                   table.usage-table; tr.part (within the row above),
                                             tr.subtotal (tokens in total), tr.total (cost)
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from html import escape
from itertools import islice

from sonarweb.answers import sections
from sonarweb.answers.content import json_answer, split_reasoning
from sonarweb.answers.images import ImageMap
from sonarweb.answers.markdown import RenderedMarkdown, render_answer
from sonarweb.answers.sanitize import sanitize
from sonarweb.answers.sources import Source, build_sources
from sonarweb.perplexity.payload import Completion

# Bump whenever the HTML changes: stored fragments older than this are rendered again in
# the background.
# 4: wide tables in a focusable scrolling region, focusable code blocks, marker groups with
#    ids and "Cited in ¶n" back-links on source cards, collapsible contents listing the
#    fragment's sections.
# 5: images from the archive's copies or placeholders, never from their hosts; at most 200
#    uncited sources listed.
# 7: Agent answers: a sentence for an answer cut off at a limit or by a cancel.
# 8: sections from templates; source cards say "Cited in n places: 1 2 3 ..." with the rest in
#    a disclosure; usage shows reasoning within the completion, "Tokens in total", "Total cost"
#    and every amount to four decimals.
# 9: answer.md cites with footnotes and escapes raw HTML outside code.
# 10: a strip of the sources' hosts above a long answer.
RENDER_VERSION = 10
# Sources listed on the page: every source the text cites, and at most this many others. An
# answer with 100,000 search results would otherwise be a page of 90 MB.
UNCITED_LISTED = 200

EMPTY = '<p class="answer-empty">The answer is empty.</p>'


def listed_sources(sources: Sequence[Source], cited: set[int]) -> tuple[list[Source], int]:
    """The sources worth a card, and how many others are left out (they stay in the JSON).

    Source ``n`` is ``sources[n - 1]``: only the listed ones are looked at, so a lazy
    ``SourceList`` of a million builds a few hundred."""
    count = len(sources)
    numbers = sorted(n for n in cited if 0 < n <= count)
    uncited = islice((n for n in range(1, count + 1) if n not in cited), UNCITED_LISTED)
    listed = [sources[n - 1] for n in heapq.merge(numbers, uncited)]
    return listed, count - len(listed)


def _more_sources(count: int) -> str:
    if not count:
        return ""
    noun = "source" if count == 1 else "sources"
    return (
        f'<p class="answer-note sources-more">{count:,} more {noun} that the answer does not '
        "cite are kept in the raw JSON download.</p>"
    )


def _cut_off_note(completion: Completion) -> str:
    """A sentence under an answer that stopped early, saying why."""
    reason = completion.incomplete_reason
    if reason == "cancelled":
        text = "The research was cancelled: this is what it had written by then."
    elif reason in ("max_output_tokens", "length") or (
        not reason and completion.finish_reason == "length"
    ):
        text = "The answer stops early: the run reached its output limit."
    elif reason:
        text = f"The answer stops early: Perplexity reported it incomplete ({escape(reason)})."
    else:
        return ""
    return f'<p class="answer-note">{text}</p>'


def render_completion(
    completion: Completion,
    *,
    followup_url: str | None = "/new/",
    images: ImageMap | None = None,
    sources: Sequence[Source] | None = None,
) -> str:
    """The answer as one sanitized fragment. ``images`` are the archive's copies of the
    images it names; any image without a copy becomes a placeholder, never a hot link.
    ``sources`` are ``build_sources(completion)``, when the caller has them already."""
    split = split_reasoning(completion.content or "")
    sources = build_sources(completion) if sources is None else sources
    pretty = json_answer(split.answer)
    if pretty is None:
        body = render_answer(split.answer, sources, images)
    else:
        code = f'<code class="language-json">{escape(pretty)}</code>'
        body = RenderedMarkdown(html=f'<pre class="answer-json" tabindex="0">{code}</pre>')
    listed, hidden = listed_sources(sources, body.cited)
    attachments = sections.attachments(completion.chunks)
    if body.html:
        main = f'<div class="answer-body">{body.html}</div>'
    else:
        main = f'<div class="answer-body">{EMPTY}</div>' if not attachments else ""
    note = _cut_off_note(completion)
    gallery = sections.gallery(completion.images, images)
    source_list = sections.sources(listed, body.cited, body.backrefs) + _more_sources(hidden)
    related = sections.related(completion.related_questions, followup_url)
    # The fragment's own sections, listed after the answer's headings in the contents.
    named = (
        ("answer-attachments", "Attachments", attachments),
        ("answer-gallery", "Images", gallery),
        ("answer-sources", "Sources", source_list),
        ("answer-related", "Related questions", related),
    )
    extra = [(slug, name) for slug, name, html in named if html]
    parts = (
        sections.toc(body.headings, extra),
        sections.source_strip(listed, body.backrefs, len(sources)) if body.html else "",
        main,
        note,
        attachments,
        gallery,
        source_list,
        related,
        sections.reasoning(split.thoughts, completion.reasoning_steps, images),
        sections.usage(completion.usage),
    )
    return sanitize(f'<article class="answer">{"".join(parts)}</article>')
