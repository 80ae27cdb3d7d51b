"""Where the words matched: short passages with the words marked, safe to put in a page.

Answers run to 40,000 words. Asking the database to highlight a whole answer (FTS5's
``snippet()``, PostgreSQL's ``ts_headline``) parses all of it, tens of milliseconds per row;
so the passage is found here first, with a regular expression over the text, and only that
passage is highlighted (by ``ts_headline`` on PostgreSQL, here on SQLite). Everything is
escaped before the ``<mark>`` tags go in: answers, titles and questions are untrusted text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Private-use characters mark highlights in text from the database until it is escaped.
START, STOP = "\ue000", "\ue001"
WINDOW_BEFORE, WINDOW_AFTER = 90, 170

_SUFFIXES = ("ingly", "edly", "ness", "ment", "ings", "ing", "ies", "ied", "ers", "ed", "es")
_SUFFIXES += ("er", "ly", "s", "y", "e")
_CITATION = re.compile(r"(?:\[\^?\d+\])+")
_LINK = re.compile(r"\[([^\]\n]{0,200})\]\((?:[^)\s]{0,2000})\)")
_MARKUP = re.compile(r"[#*`>|_~]+|-{3,}|={3,}")
_SPACE = re.compile(r"\s+")
# Split with these, a text's odd pieces are its words, or what the database marked.
_WORD = re.compile(r"([^\W_]+)")
_MARKED = re.compile(f"{START}(.*?){STOP}", re.S)


@dataclass(frozen=True)
class Snippet:
    field: str
    html: SafeString

    @property
    def label(self) -> str:
        return self.field.capitalize()


def stem(word: str) -> str:
    """A rough English stem, enough to find "battery" for "batteries"; the index's own
    stemmer decides what matches, this only finds the passage to show."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def plain(text: str) -> str:
    """Markdown as a reader sees it, near enough for a one-line passage."""
    # The archived Markdown escapes raw HTML as &lt;; a passage shows the text as written
    # (the template escapes it again).
    text = _LINK.sub(r"\1", text).replace("&lt;", "<")
    text = _CITATION.sub("", text)
    text = _MARKUP.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


class Matcher:
    def __init__(self, words: list[str]) -> None:
        self.stems = {stem(w) for w in words if w}
        prefixes = sorted(self.stems, key=len, reverse=True)
        self.pattern = (
            re.compile(r"(?<![^\W_])(?:" + "|".join(map(re.escape, prefixes)) + r")[^\W_]*", re.I)
            if prefixes
            else None
        )

    def matches(self, word: str) -> bool:
        return stem(word) in self.stems

    def first(self, text: str) -> int | None:
        if self.pattern is None:
            return None
        for found in self.pattern.finditer(text):
            if self.matches(found.group(0)):
                return found.start()
        return None

    def window(self, text: str, whole_below: int = 0) -> str | None:
        """The passage around the first match, or None when nothing here matches."""
        at = self.first(text)
        if at is None:
            return None
        if len(text) <= whole_below:
            return plain(text)
        # Markdown is cleaned up around the match only: a whole answer is 100s of KB.
        head = max(0, at - 4 * WINDOW_BEFORE)
        text = ("…" if head else "") + plain(text[head : at + 4 * WINDOW_AFTER])
        at = self.first(text)
        if at is None:
            return None
        start = max(0, at - WINDOW_BEFORE)
        end = min(len(text), at + WINDOW_AFTER)
        # Whole words only at the cut ends.
        if start > 0:
            space = text.find(" ", start, at)
            start = space + 1 if space >= 0 else start
        if end < len(text):
            space = text.rfind(" ", at, end)
            end = space if space > at else end
        return ("…" if start > 0 else "") + text[start:end] + ("…" if end < len(text) else "")

    def highlight(self, passage: str) -> SafeString:
        """Escape the passage and mark each word that matches."""
        pieces = [
            f"<mark>{escape(piece)}</mark>" if i % 2 and self.matches(piece) else escape(piece)
            for i, piece in enumerate(_WORD.split(passage))
        ]
        return mark_safe("".join(pieces))  # noqa: S308 - every piece of text above is escaped


def from_markers(text: str) -> SafeString | None:
    """Text the database highlighted with START/STOP, escaped, with <mark> tags; None when
    nothing was highlighted."""
    if START not in text:
        return None
    pieces = [escape(piece.replace(START, "").replace(STOP, "")) for piece in _MARKED.split(text)]
    marked = [f"<mark>{piece}</mark>" if i % 2 else piece for i, piece in enumerate(pieces)]
    return mark_safe("".join(marked))  # noqa: S308 - every piece of text above is escaped
