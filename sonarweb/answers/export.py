"""The answer as a markdown file people can keep: body, attachments, sources as footnotes.

Citation markers become footnote references (``[3]`` is ``[^3]``), and each cited source is
the footnote ``[^3]: [title](url)``, with the page's numbering; sources the answer does not
cite follow as a plain list. The answer is untrusted text from the web: any raw HTML in it
(``<img onerror>``, ``<iframe>``, ``<style>``) is escaped outside code, so a viewer that
renders HTML in Markdown shows it as text and runs or loads nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from sonarweb.answers.content import json_answer, split_reasoning
from sonarweb.answers.render import listed_sources
from sonarweb.answers.sections import CHUNK_NAMES
from sonarweb.answers.sources import Source, build_sources, citable_count, http_url
from sonarweb.perplexity.payload import Completion

_MARKER = re.compile(r"\[ ?(\d{1,7}(?: ?, ?\d{1,7})*) ?\](?!\()")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# Spaces, parentheses and angle brackets would end a link destination early.
_LINK_URL = str.maketrans({" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E"})


def _link_text(text: str) -> str:
    text = " ".join(text.split())
    return re.sub(r"([\\\[\]])", r"\\\1", text)


def _link(text: str, url: str) -> str:
    href = http_url(url)
    if href is None:
        return _link_text(text)
    return f"[{_link_text(text)}]({href.translate(_LINK_URL)})"


def _prose(line: str, cited: set[int], count: int) -> str:
    """One line outside code blocks: HTML escaped, markers made footnote references."""

    def footnotes(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        if not all(0 < n <= count for n in numbers):
            return match.group(0)
        cited.update(numbers)
        return "".join(f"[^{n}]" for n in numbers)

    pieces: list[str] = []
    last = 0
    for span in _CODE_SPAN.finditer(line):
        pieces.append(_MARKER.sub(footnotes, line[last : span.start()].replace("<", "&lt;")))
        pieces.append(span.group(0))
        last = span.end()
    pieces.append(_MARKER.sub(footnotes, line[last:].replace("<", "&lt;")))
    return "".join(pieces)


def safe_markdown(answer: str, count: int) -> tuple[str, set[int]]:
    """The answer with raw HTML escaped and markers as footnotes, outside code; and the
    source numbers it cites."""
    cited: set[int] = set()
    out: list[str] = []
    fence: str | None = None
    for line in answer.splitlines(keepends=True):
        opener = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = None
        elif opener:
            fence = opener.group(1)
            out.append(line)
        elif line.startswith(("    ", "\t")) and (not out or not out[-1].strip()):
            out.append(line)  # an indented code block: shown as code, never rendered
        else:
            out.append(_prose(line, cited, count))
    return "".join(out), cited


def render_plain_markdown(completion: Completion, sources: Sequence[Source] | None = None) -> str:
    """answer.md's body; ``sources`` are ``build_sources(completion)`` if the caller has them."""
    answer = split_reasoning(completion.content or "").answer
    sources = build_sources(completion) if sources is None else sources
    pretty = json_answer(answer)
    citable = citable_count(sources)
    if pretty is not None:
        answer, cited = f"```json\n{pretty}\n```", set()
    else:
        answer, cited = safe_markdown(answer, citable)
    blocks = [answer] if answer else []
    attachments = [
        f"- {CHUNK_NAMES.get(c.type, c.type)}: {_link(c.name or c.url, c.url)}"
        for c in completion.chunks
        if c.url and http_url(c.url)
    ]
    if attachments:
        blocks.append("## Attachments\n\n" + "\n".join(attachments))
    if sources:
        listed, hidden = listed_sources(sources, cited)
        notes = [f"[^{s.number}]: {_link(s.title, s.url)}" for s in listed if s.number in cited]
        others = [f"- {_link(s.title, s.url)}" for s in listed if s.number not in cited]
        lines = ["## Sources", ""]
        if notes:
            lines += [*notes, ""]
        if others:
            lines += ["Not cited in the text:", "", *others, ""]
        if hidden:
            lines.append(
                f"{hidden:,} more sources that the answer does not cite are in answer.json."
            )
        blocks.append("\n".join(lines).rstrip("\n"))
    if not blocks:
        return "The answer is empty.\n"
    return "\n\n".join(blocks) + "\n"


def slugify(text: str, limit: int = 60) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rstrip("-")


def export_markdown(
    completion: Completion, *, question: str = "", request_id: str = ""
) -> tuple[str, str]:
    """(filename, text): the file is named after the question, else the request id."""
    name = slugify(question) or slugify(request_id) or "answer"
    title = " ".join(question.split())
    text = render_plain_markdown(completion)
    if title:
        text = f"# {title}\n\n{text}"
    return f"{name}.md", text
