"""An answer's markdown cut into sections at its headings, so that a long report can be read
one part at a time (a 40,000-word answer never has to arrive whole).

Headings inside fenced code blocks do not count. A section longer than ``SECTION_CHARS`` is
cut further, at blank lines outside code where it can be, and its parts keep its heading with
"(continued)"; so no section is much longer than that whatever the answer looks like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECTION_CHARS = 12_000
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")


@dataclass(frozen=True)
class Section:
    index: int
    heading: str
    level: int
    text: str

    @property
    def length(self) -> int:
        return len(self.text)


@dataclass
class _Part:
    heading: str
    level: int
    lines: list[str]


def _fence_change(line: str, fence: str | None) -> str | None:
    """The fence open after ``line``, given the one open before it."""
    opener = _FENCE.match(line)
    if fence is None:
        return opener.group(1) if opener else None
    if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
        return None
    return fence


def _at_headings(markdown: str) -> list[_Part]:
    parts = [_Part("", 0, [])]
    fence: str | None = None
    for line in markdown.splitlines(keepends=True):
        if fence is None and (match := _HEADING.match(line.rstrip("\n"))):
            parts.append(_Part((match.group(2) or "").strip(), len(match.group(1)), [line]))
        else:
            parts[-1].lines.append(line)
        fence = _fence_change(line, fence)
    return [p for p in parts if "".join(p.lines).strip()]


def _pieces(lines: list[str], limit: int) -> list[str]:
    """The lines as texts of at most about ``limit`` characters, cut at blank lines outside
    code where possible, else at a line, else inside a line."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    fence: str | None = None
    last_break = 0  # in current: where the text may be cut
    for line in lines:
        current.append(line)
        size += len(line)
        fence = _fence_change(line, fence)
        if fence is None and not line.strip():
            last_break = len(current)
        if size <= limit:
            continue
        if 0 < last_break < len(current):
            cut = last_break  # at the last blank line outside code
        elif len(current) > 1:
            cut = len(current) - 1  # before the line that went over
        else:
            cut = 1  # one line alone is over: it is cut inside below
        pieces += _cut("".join(current[:cut]), limit)
        current = current[cut:]
        size = sum(len(x) for x in current)
        last_break = 0
    pieces += _cut("".join(current), limit)
    return [p for p in pieces if p.strip()]


def _cut(text: str, limit: int) -> list[str]:
    return [text[start : start + limit] for start in range(0, len(text), limit)]


def split_sections(markdown: str, limit: int = SECTION_CHARS) -> list[Section]:
    sections: list[Section] = []
    for part in _at_headings(markdown):
        for number, text in enumerate(_pieces(part.lines, limit)):
            heading = part.heading if number == 0 else f"{part.heading} (continued)".strip()
            sections.append(Section(len(sections) + 1, heading, part.level, text))
    return sections
