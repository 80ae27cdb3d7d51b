"""The answer text before markdown: reasoning split off, JSON answers recognised."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_THINK = re.compile(r"<think\s*>(.*?)</think\s*>", re.IGNORECASE | re.DOTALL)
_OPEN = re.compile(r"<think\s*>", re.IGNORECASE)
_CLOSE = re.compile(r"</think\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class SplitContent:
    answer: str
    thoughts: tuple[str, ...]


def split_reasoning(content: str) -> SplitContent:
    """Take ``<think>`` blocks out of the answer.

    Besides well-formed blocks anywhere, two damaged shapes occur: a block whose opening tag
    was cut off (text, then ``</think>``, then the answer) and one that never closes because
    the model ran out of tokens while thinking. In both the reasoning must not pose as answer.
    """
    if "think" not in content.lower():
        return SplitContent(answer=content.strip(), thoughts=())
    thoughts: list[str] = []
    first_close, first_open = _CLOSE.search(content), _OPEN.search(content)
    if first_close and (first_open is None or first_close.start() < first_open.start()):
        thoughts.append(content[: first_close.start()])
        content = content[first_close.end() :]

    def take(match: re.Match[str]) -> str:
        thoughts.append(match.group(1))
        return "\n\n"

    content = _THINK.sub(take, content)
    unclosed = _OPEN.search(content)
    if unclosed:
        thoughts.append(content[unclosed.end() :])
        content = content[: unclosed.start()]
    content = _CLOSE.sub("", content)
    return SplitContent(
        answer=content.strip(), thoughts=tuple(t.strip() for t in thoughts if t.strip())
    )


def json_answer(text: str) -> str | None:
    """The answer pretty-printed when it is a JSON document (``response_format`` json_schema)."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[" or stripped[-1] not in "}]":
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(value, dict | list):
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
_MARKUP = re.compile(r"[*_`]|\[\d+(?:,\s*\d+)*\]|\[([^\]]*)\]\([^)]*\)")


def first_heading(content: str, limit: int = 200) -> str:
    """The answer's first markdown heading as plain text (markers, emphasis and link targets
    taken out), or "": what names a request nobody titled and nobody asked here."""
    answer = split_reasoning(content).answer
    fence = _FENCE.search(answer)
    match = _HEADING.search(answer, 0, fence.start() if fence else len(answer))
    if match is None:
        return ""
    text = _MARKUP.sub(lambda m: m.group(1) or "", match.group(1))
    return " ".join(text.split())[:limit]
