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
                                             with a.backlink[href=#cite-n] per citing passage
      section.answer-related                 ul.related-list > li > a.followup
      details.answer-reasoning               think blocks and reasoning steps, closed
      section.answer-usage                   table.usage-table
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from sonarweb.answers import sections
from sonarweb.answers.content import json_answer, split_reasoning
from sonarweb.answers.markdown import RenderedMarkdown, render_answer
from sonarweb.answers.sanitize import sanitize
from sonarweb.answers.sources import Source, build_sources
from sonarweb.perplexity.payload import Completion

# Bump whenever the HTML changes: stored fragments older than this are re-rendered lazily.
# 4: wide tables in a focusable scrolling region, focusable code blocks, marker groups with
#    ids and "Cited in ¶n" back-links on source cards, collapsible contents listing the
#    fragment's sections.
RENDER_VERSION = 4

EMPTY = '<p class="answer-empty">The answer is empty.</p>'


def _body(answer: str, sources: Sequence[Source]) -> RenderedMarkdown:
    if not answer:
        return RenderedMarkdown(html="")
    pretty = json_answer(answer)
    if pretty is not None:
        code = f'<code class="language-json">{escape(pretty)}</code>'
        return RenderedMarkdown(html=f'<pre class="answer-json" tabindex="0">{code}</pre>')
    return render_answer(answer, sources)


def render_completion(completion: Completion, *, followup_url: str | None = "/new/") -> str:
    split = split_reasoning(completion.content or "")
    sources = build_sources(completion)
    body = _body(split.answer, sources)
    attachments = sections.attachments(completion.chunks)
    if body.html:
        main = f'<div class="answer-body">{body.html}</div>'
    else:
        main = f'<div class="answer-body">{EMPTY}</div>' if not attachments else ""
    note = ""
    if completion.finish_reason == "length":
        note = (
            '<p class="answer-note">The answer stops early: the model reached its length limit.</p>'
        )
    gallery = sections.gallery(completion.images)
    source_list = sections.sources(sources, body.cited, body.backrefs)
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
        main,
        note,
        attachments,
        gallery,
        source_list,
        related,
        sections.reasoning(split.thoughts, completion.reasoning_steps),
        sections.usage(completion.usage),
    )
    return sanitize(f'<article class="answer">{"".join(parts)}</article>')
