"""A markdown-it plugin that turns ``[n]`` citation markers into links to source cards.

It is an inline rule, so it sees only prose: code spans and code blocks never reach it, and
neither does text inside a link's label (a link cannot contain another link). Each bracket
group of a run such as ``[1][2]`` or ``[1, 2, 3]`` is checked on its own; a group with a
number outside the citable sources (or 0) stays literal text, because a marker that points
nowhere is more honest as text than as a dead link.

The marker links to its card ``#source-n`` in the page rather than to the web page itself:
following it keeps the reader in the answer, the card (and the hover card that answer.js
clones from it) carries the outbound link that opens in a new tab, and the snippet is written
once per source instead of once per marker. Its accessible name comes from a hidden label in
that card (``aria-labelledby``), which keeps each of the thousands of markers in a long
answer to one short element.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from sonarweb.answers.sources import Source, citable_count


@dataclass(frozen=True)
class Backref:
    """A passage that cites a source, and the id number of its first marker group there."""

    passage: int
    group: int


ENV_SOURCES = "answer_sources"
ENV_COUNT = "answer_citable"
ENV_CITED = "answer_cited"
ENV_LINKS = "answer_cite_links"
# Back-links from source cards: the passage being rendered, the running number of marker
# groups (each group's id is ``cite-<n>``), and per source the passages that cite it.
ENV_PASSAGE = "answer_passage"
ENV_GROUPS = "answer_cite_groups"
ENV_BACKREFS = "answer_backrefs"

_GROUP = re.compile(r"\[ ?(\d{1,4}(?: ?, ?\d{1,4})*) ?\]")


def _groups(state: StateInline, count: int) -> tuple[list[int], int]:
    """Numbers of the run of valid bracket groups at ``state.pos`` and where the run ends."""
    src, pos = state.src, state.pos
    numbers: list[int] = []
    while True:
        match = _GROUP.match(src, pos)
        if match is None:
            break
        end = match.end()
        # `[1](https://...)` is an ordinary markdown link whose text happens to be a number.
        if src.startswith("(", end):
            break
        group = [int(n) for n in match.group(1).split(",")]
        if not all(0 < n <= count for n in group):
            break
        numbers.extend(group)
        pos = end
    return numbers, pos


def citation_rule(state: StateInline, silent: bool) -> bool:
    # Silent mode only serves link-label scanning, which would take a consumed `[2]` for a
    # nested link and give up on `[see [2]](https://...)`; as plain text it scans fine.
    if silent or state.linkLevel > 0 or state.src[state.pos] != "[":
        return False
    count: int = state.env.get(ENV_COUNT, 0)
    if not count:
        return False
    numbers, end = _groups(state, count)
    if not numbers:
        return False
    token = state.push("citation", "sup", 0)
    token.meta = {"numbers": numbers}
    token.markup = state.src[state.pos : end]
    state.env.setdefault(ENV_CITED, set()).update(numbers)
    state.pos = end
    return True


def _marker_link(source: Source) -> str:
    # Deliberately small: a long answer has thousands of markers. The accessible name
    # ("Source n: title (domain)") is written once, in the card, and referenced here.
    n = source.number
    return f'<a class="cite" href="#source-{n}" aria-labelledby="source-{n}-label">{n}</a>'


def render_citation(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    # Long answers repeat the same few markers hundreds of times: build each link once.
    links: dict[int, str] = env.setdefault(ENV_LINKS, {})
    sources: Sequence[Source] = env[ENV_SOURCES]
    group = env[ENV_GROUPS] = env.get(ENV_GROUPS, 0) + 1
    passage: int = env.get(ENV_PASSAGE, 0)
    backrefs: dict[int, list[Backref]] = env.setdefault(ENV_BACKREFS, {})
    parts = []
    for n in tokens[idx].meta["numbers"]:
        link = links.get(n)
        if link is None:
            link = links[n] = _marker_link(sources[n - 1])
        parts.append(link)
        # One back-link per passage: the first marker of the source there.
        refs = backrefs.setdefault(n, [])
        if not refs or refs[-1].passage != passage:
            refs.append(Backref(passage=passage, group=group))
    return f'<sup class="cites" id="cite-{group}">{"".join(parts)}</sup>'


def count_passage(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    """Paragraphs and tables are the passages that back-links number (¶1, ¶2, ...)."""
    env[ENV_PASSAGE] = env.get(ENV_PASSAGE, 0) + 1
    return str(self.renderToken(tokens, idx, options, env))


def citations_plugin(md: MarkdownIt) -> None:
    # Before "link" so that `[1]` wins over a shortcut reference link to a `[1]: url` definition.
    md.inline.ruler.before("link", "citation", citation_rule)
    md.add_render_rule("citation", render_citation)


def citation_env(sources: Sequence[Source]) -> dict[str, Any]:
    """The markdown-it env that lets markers reach ``sources`` (citable ones come first)."""
    return {ENV_SOURCES: sources, ENV_COUNT: citable_count(sources)}
