"""The search box's syntax, parsed once in Python and compiled for each database.

It is PostgreSQL's ``websearch_to_tsquery`` syntax: words must all appear (in any field, any
form: the index stems them), ``"a quoted phrase"`` must appear in that order, ``-word`` or
``-"a phrase"`` must not appear, and ``or`` between words makes alternatives, binding looser
than the implicit AND (``a b or c`` is ``(a AND b) OR c``). Anything else a person types,
punctuation included, is never an error: characters that are not letters or digits separate
words, and a term with no word left is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_TERMS = 16
MAX_WORD_CHARS = 64
_WORD = re.compile(r"[^\W_]+")
# A token: any leading "-" (negated), then a quoted phrase (to the next quote, or the end) or
# a run of characters up to whitespace or a quote.
_TOKEN = re.compile(r'(?=\S)(-*)(?:"([^"]*)"?|([^\s"]*))')


@dataclass(frozen=True)
class Term:
    """One word, or a phrase: several words in this order."""

    words: tuple[str, ...]

    @property
    def quoted(self) -> str:
        # Words hold letters and digits only, so nothing inside the quotes needs escaping.
        return '"' + " ".join(self.words) + '"'


@dataclass
class Group:
    """Terms that must all appear, and terms none of which may appear."""

    positive: list[Term] = field(default_factory=list)
    negative: list[Term] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.positive or self.negative)


@dataclass
class Query:
    """Alternatives (``or``); a row matches when any group matches."""

    groups: list[Group]

    @property
    def matching(self) -> list[Group]:
        """Groups an index can look up: those with at least one word that must appear."""
        return [g for g in self.groups if g.positive]

    @property
    def excluding(self) -> list[Group]:
        """Groups of exclusions only (``-word``): they match every row without those words."""
        return [g for g in self.groups if not g.positive]

    def words(self) -> list[str]:
        """The words that must appear somewhere, for showing where they matched."""
        return list(dict.fromkeys(w for g in self.groups for t in g.positive for w in t.words))

    def websearch(self, groups: list[Group]) -> str:
        """``groups`` in websearch syntax again, every term quoted (PostgreSQL's input)."""
        return " or ".join(
            " ".join([t.quoted for t in g.positive] + [f"-{t.quoted}" for t in g.negative])
            for g in groups
        )

    def fts5(self, groups: list[Group]) -> str:
        """``groups`` as an FTS5 MATCH expression: every term a quoted string, explicit
        operators and parentheses, so no input is ever read as FTS5 syntax."""
        alternatives = []
        for group in groups:
            expression = " AND ".join(t.quoted for t in group.positive)
            if group.negative:
                excluded = " OR ".join(t.quoted for t in group.negative)
                expression = f"({expression}) NOT ({excluded})"
            alternatives.append(f"({expression})")
        return " OR ".join(alternatives)


def parse(text: str) -> Query:
    groups: list[Group] = [Group()]
    terms = 0
    for match in _TOKEN.finditer(text or ""):
        negated, phrase, token = bool(match[1]), match[2], match[3]
        if phrase is None and not negated and token.lower() == "or":
            if groups[-1]:
                groups.append(Group())
            continue
        found = _WORD.findall(token if phrase is None else phrase)
        words = tuple(w[:MAX_WORD_CHARS].lower() for w in found)
        if not words or terms >= MAX_TERMS:
            continue
        terms += 1
        (groups[-1].negative if negated else groups[-1].positive).append(Term(words))
    return Query([g for g in groups if g])
