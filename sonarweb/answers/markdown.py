"""The markdown-it setup for answers: CommonMark plus tables, strikethrough, task lists,
footnotes and citation markers, with heading anchors and outbound-link attributes.

Raw HTML in the markdown is shown as text, never parsed: the answer is untrusted and nh3 is a
second line of defence, not the first. ``<br>`` is the exception, because answers use it for
line breaks inside table cells and it carries no risk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from sonarweb.answers.citations import (
    ENV_BACKREFS,
    ENV_CITED,
    Backref,
    citation_env,
    citations_plugin,
    count_passage,
)
from sonarweb.answers.images import ImageMap, local_img, placeholder
from sonarweb.answers.sources import Source, http_url

ENV_ANCHORS = "answer_anchors"
ENV_SHIFT = "answer_heading_shift"
ENV_HEADINGS = "answer_headings"
ENV_DROP_LINK = "answer_drop_link"
# The archive's copies of the images the answer names (answers/images.py).
ENV_IMAGES = "answer_images"
ENV_TABLES = "answer_tables"

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SLUG_DROP = re.compile(r"[^\w\- ]")
# Ids the rest of the fragment and answer.js rely on; a heading must never take one of them.
_RESERVED_ID = re.compile(r"^(?:source-\d+|fn.*|fnref.*|answer-.*|cite-card|lightbox)$")


@dataclass(frozen=True)
class Heading:
    level: int  # as written in the markdown, before the shift under the page's own headings
    slug: str
    text: str


@dataclass
class RenderedMarkdown:
    html: str
    headings: list[Heading] = field(default_factory=list)
    cited: set[int] = field(default_factory=set)
    backrefs: dict[int, list[Backref]] = field(default_factory=dict)


def slugify(text: str) -> str:
    return _SLUG_DROP.sub("", text.strip().lower()).replace(" ", "-") or "section"


def _unique(slug: str, taken: set[str]) -> str:
    if _RESERVED_ID.match(slug):
        slug = f"{slug}-section"
    candidate, i = slug, 1
    while candidate in taken:
        candidate = f"{slug}-{i}"
        i += 1
    taken.add(candidate)
    return candidate


def _heading_text(inline: Token) -> str:
    parts = []
    for child in inline.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split())


def _post_process(state: StateCore) -> None:
    """Shift headings, give them ids and anchors, and turn table alignment into classes.

    Answer headings sit under the page's own h1 and the fragment's h2 sections, so they move
    down a level. Table alignment arrives as a ``style`` attribute, which the CSP forbids.
    """
    env = state.env
    anchors = bool(env.get(ENV_ANCHORS))
    shift: int = env.get(ENV_SHIFT, 1)
    headings: list[Heading] = env.setdefault(ENV_HEADINGS, [])
    taken: set[str] = set()
    tokens = state.tokens
    for i, token in enumerate(tokens):
        kind = token.type
        if kind == "heading_open":
            level = int(token.tag[1])
            tag = f"h{min(6, level + shift)}"
            token.tag = tokens[i + 2].tag = tag
            if not anchors:
                continue
            inline = tokens[i + 1]
            text = _heading_text(inline)
            slug = _unique(slugify(text), taken)
            token.attrSet("id", slug)
            if inline.children is not None:
                meta = {"slug": slug, "text": text}
                inline.children.append(Token("heading_anchor", "a", 0, meta=meta))
            headings.append(Heading(level=level, slug=slug, text=text))
        elif kind in ("th_open", "td_open"):
            style = token.attrs.pop("style", None)
            if isinstance(style, str) and ":" in style:
                token.attrSet("class", "align-" + style.rsplit(":", 1)[1].strip())


def _br_rule(state: StateInline, silent: bool) -> bool:
    if state.src[state.pos] != "<":
        return False
    match = _BR.match(state.src, state.pos)
    if match is None:
        return False
    if not silent:
        state.push("hardbreak", "br", 0)
    state.pos = match.end()
    return True


Rule = Any  # markdown-it passes the renderer itself as ``self``


def _link_open(
    self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    token = tokens[idx]
    href = str(token.attrGet("href") or "")
    if len(href) > 1 and href.startswith("#"):
        env[ENV_DROP_LINK] = False
        return self.renderToken(tokens, idx, options, env)
    if http_url(href) is None:
        # Relative, mailto: and other links lead nowhere useful from our page: keep the text.
        env[ENV_DROP_LINK] = True
        return ""
    env[ENV_DROP_LINK] = False
    token.attrSet("target", "_blank")
    token.attrSet("rel", "noopener noreferrer")
    return self.renderToken(tokens, idx, options, env)


def _link_close(
    self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    if env.pop(ENV_DROP_LINK, False):
        return ""
    return self.renderToken(tokens, idx, options, env)


def _image(self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    """The archive's copy of the image, or a placeholder: never the address the answer names."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    raw = str(token.attrGet("src") or "")
    if http_url(raw) is None:
        return escape(alt)
    copy = (env.get(ENV_IMAGES) or {}).get(raw)
    if copy is not None and copy.stored:
        return local_img(copy, alt, title=str(token.attrGet("title") or ""))
    return placeholder(raw, alt, "", copy)


def _html_inline(
    self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    # With html parsing off, the only html tokens come from plugins: the task-list checkbox
    # becomes a symbol because form controls are not allowed in the fragment.
    content = tokens[idx].content
    if content.startswith('<input class="task-list-item-checkbox"'):
        if "checked" in content:
            return '<span class="task-box done" role="img" aria-label="Done">☑</span>'
        return '<span class="task-box" role="img" aria-label="Not done">☐</span>'
    return escape(content)


def _html_block(
    self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    return escape(tokens[idx].content)


def _heading_anchor(
    self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    meta = tokens[idx].meta
    slug, text = escape(meta["slug"]), escape(meta["text"])
    return f' <a class="heading-anchor" href="#{slug}" aria-label="Link to section: {text}">#</a>'


def _scrolling_code(default: Any) -> Any:
    """Code blocks scroll sideways, so they must take keyboard focus to be scrolled."""

    def render(
        self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
    ) -> str:
        html = str(default(tokens, idx, options, env))
        return html.replace("<pre>", '<pre tabindex="0">', 1)

    return render


def _table_open(
    self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    # A wide table scrolls inside its own region instead of squeezing its words apart; the
    # region takes focus so the keyboard can scroll it, and its name says what it is.
    count_passage(self, tokens, idx, options, env)
    number = env[ENV_TABLES] = env.get(ENV_TABLES, 0) + 1
    table = self.renderToken(tokens, idx, options, env)
    return (
        f'<div class="table-scroll" tabindex="0" role="region" aria-label="Table {number}">{table}'
    )


def _table_close(
    self: Rule, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    return f"{self.renderToken(tokens, idx, options, env)}</div>"


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "langPrefix": "language-"})
    md.enable(["table", "strikethrough"])
    # Answers often cite a bare URL in prose; GFM turns those into links, so do we.
    md.use(footnote_plugin).use(tasklists_plugin).use(gfm_autolink_plugin).use(citations_plugin)
    md.inline.ruler.before("autolink", "br_tag", _br_rule)
    md.core.ruler.push("answer_post_process", _post_process)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    md.add_render_rule("html_inline", _html_inline)
    md.add_render_rule("html_block", _html_block)
    md.add_render_rule("heading_anchor", _heading_anchor)
    md.add_render_rule("paragraph_open", count_passage)
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    for name in ("fence", "code_block"):
        md.add_render_rule(name, _scrolling_code(md.renderer.rules[name]))
    return md


# Building the parser costs more than rendering a short answer; it holds no per-call state.
_MD = _build()


def render_answer(
    text: str, sources: Sequence[Source], images: ImageMap | None = None
) -> RenderedMarkdown:
    env = citation_env(sources)
    env[ENV_ANCHORS] = True
    env[ENV_IMAGES] = images
    html = _MD.render(text, env)
    return RenderedMarkdown(
        html=html,
        headings=env[ENV_HEADINGS],
        cited=env.get(ENV_CITED, set()),
        backrefs=env.get(ENV_BACKREFS, {}),
    )


def render_note(text: str, *, doc_id: str, shift: int = 2, images: ImageMap | None = None) -> str:
    """Markdown outside the answer body (reasoning): no markers, no heading ids.

    ``doc_id`` keeps footnote ids apart from the answer's own footnotes.
    """
    return _MD.render(text, {ENV_SHIFT: shift, "docId": doc_id, ENV_IMAGES: images})
