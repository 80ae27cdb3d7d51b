"""The answer as a markdown file people can keep: body, attachments, numbered sources.

Citation markers stay as written; the Sources list uses the same numbering as the page, so
``[3]`` in the text is item 3 at the end.
"""

from __future__ import annotations

import re
import unicodedata

from sonarweb.answers.content import json_answer, split_reasoning
from sonarweb.answers.render import listed_sources
from sonarweb.answers.sources import build_sources, http_url
from sonarweb.perplexity.payload import Completion

_MARKER = re.compile(r"\[(\d{1,7})\]")
_CHUNK_NAMES = {"image_url": "Image", "file_url": "File", "pdf_url": "PDF", "video_url": "Video"}


def _link_text(text: str) -> str:
    text = " ".join(text.split())
    return re.sub(r"([\\\[\]])", r"\\\1", text)


def _link_url(url: str) -> str:
    # Spaces, parentheses and angle brackets would end the link destination early.
    for raw, encoded in ((" ", "%20"), ("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E")):
        url = url.replace(raw, encoded)
    return url


def _link(text: str, url: str) -> str:
    href = http_url(url)
    if href is None:
        return _link_text(text)
    return f"[{_link_text(text)}]({_link_url(href)})"


def render_plain_markdown(completion: Completion) -> str:
    answer = split_reasoning(completion.content or "").answer
    pretty = json_answer(answer)
    if pretty is not None:
        answer = f"```json\n{pretty}\n```"
    blocks = [answer] if answer else []
    attachments = [
        f"- {_CHUNK_NAMES.get(c.type, c.type)}: {_link(c.name or c.url, c.url)}"
        for c in completion.chunks
        if c.url and http_url(c.url)
    ]
    if attachments:
        blocks.append("## Attachments\n\n" + "\n".join(attachments))
    sources = build_sources(completion)
    if sources:
        cited = {int(n) for n in _MARKER.findall(answer)}
        listed, hidden = listed_sources(sources, cited)
        lines = [f"{s.number}. {_link(s.title, s.url)}" for s in listed]
        if hidden:
            lines.append(
                f"\n{hidden:,} more sources that the answer does not cite are in answer.json."
            )
        blocks.append("## Sources\n\n" + "\n".join(lines))
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
