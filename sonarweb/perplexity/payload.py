"""The parsed shapes both upstream protocols produce, and the tolerant readers they share.

``sonar.py`` (the retired async Sonar API, whose archived answers stay readable) and
``agent.py`` (the Agent API's background runs) each turn their own JSON into these
dataclasses, so nothing above ``perplexity/`` needs to know which protocol answered.

Upstream fields come and go: every optional field may be missing or null and new fields
appear. Parsing never raises on a field it does not understand; it only raises
``PayloadError`` when the document is not a job at all (no id or status). The raw JSON is
always kept by the caller, so nothing is lost by ignoring fields.

Documents are read from their text with ``loads_streamed``: the arrays that may hold a
million sources are read one element at a time, so their dicts never all exist at once.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from json.decoder import WHITESPACE, scanstring
from typing import Any, Protocol, Self

# sonarweb's own status vocabulary (the ``data-status`` values pages carry). Both protocols
# map onto it; an upstream status outside it is kept verbatim and treated as still running.
STATUSES = ("CREATED", "IN_PROGRESS", "COMPLETED", "FAILED", "INCOMPLETE", "CANCELLED")
FINISHED_STATUSES = ("COMPLETED", "FAILED", "INCOMPLETE", "CANCELLED")
# Finished with an answer worth showing: in full, cut off at a limit, or partial when cancelled.
ANSWERED_STATUSES = ("COMPLETED", "INCOMPLETE", "CANCELLED")


class PayloadError(ValueError):
    """The JSON is not the shape of document that was expected."""


# NUL and lone surrogates (from "\\u0000" or "\\ud800" escapes) are valid in JSON strings
# but not in the text of either database: PostgreSQL refuses NUL, and neither SQLite nor
# PostgreSQL can encode a lone surrogate as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """The string with NUL removed and lone surrogates replaced by U+FFFD (the same string
    object when it has neither)."""
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def as_str(value: Any, default: str = "") -> str:
    """Every string taken from upstream passes here, so none can carry unstorable text."""
    if value is None:
        return default
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float | bool):
        return str(value)
    return default


def as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = as_float(value)
    return None if number is None else int(number)


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    number: float | None = float(value) if isinstance(value, int | float) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    return number if number is not None and math.isfinite(number) else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def timestamp(value: Any) -> datetime | None:
    """Unix seconds (int, float or numeric string) as an aware UTC datetime."""
    seconds = as_float(value)
    if seconds is None or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


# Reading large documents ------------------------------------------------------------------


class Collector(Protocol):
    """What an array read by ``loads_streamed`` becomes: it is given each element as soon as
    that element is parsed, and keeps what it needs of it (``list`` keeps everything)."""

    def append(self, item: Any, /) -> None: ...


# A path is the object keys leading to an array, with "*" standing for every element of an
# array on the way: ("output", "*", "results") is the ``results`` of each output item.
Path = tuple[str, ...]
Collectors = Mapping[Path, Callable[[], Collector]]

_DECODER = json.JSONDecoder()
_SKIP_SPACE = WHITESPACE.match


def loads_streamed(text: str, collectors: Collectors) -> Any:
    """``json.loads(text)``, except that each array at one of ``collectors``' paths is handed
    element by element to a new collector, which stands in the document for the array.

    A million small sources cost about 260 bytes each as dicts: 260 MB for a 30 MB answer,
    all alive at once when the whole text is parsed first, before one of them is read. Read
    here, each source's dict is dropped as soon as its collector has taken what it keeps.
    Everything else is parsed by ``json``'s own scanner, with its rules; text that is not
    JSON is handed to ``json.loads``, so it raises exactly what ``json.loads`` raises.
    """
    try:
        value, end = _StreamReader(text, collectors).value(_SKIP_SPACE(text, 0).end(), ())
        if _SKIP_SPACE(text, end).end() == len(text):
            return value
    except (ValueError, StopIteration):
        pass
    # Not JSON: json.loads says why (outside the handler, so what was read so far is gone).
    return json.loads(text)


class _StreamReader:
    """Walks objects and arrays only on the way to the collected arrays; every other value,
    and every element of a collected array, is parsed whole by ``json``'s scanner."""

    def __init__(self, text: str, collectors: Collectors) -> None:
        self.text = text
        self.collectors = collectors
        self.ways = {path[:depth] for path in collectors for depth in range(len(path))}

    def value(self, index: int, path: Path) -> tuple[Any, int]:
        opener = self.text[index : index + 1]
        make = self.collectors.get(path)
        if opener == "[" and make is not None:
            return self.collected(index, make())
        if opener == "{" and path in self.ways:
            return self.mapping(index, path)
        if opener == "[" and path in self.ways:
            items: list[Any] = []
            end = self.elements(index, lambda at: self.value(at, (*path, "*")), items)
            return items, end
        return _DECODER.scan_once(self.text, index)

    def collected(self, index: int, collector: Collector) -> tuple[Collector, int]:
        return collector, self.elements(index, partial(_DECODER.scan_once, self.text), collector)

    def elements(
        self, index: int, element: Callable[[int], tuple[Any, int]], into: Collector
    ) -> int:
        """Read the array opening at ``index`` into ``into``; where it ends."""
        text = self.text
        index = _SKIP_SPACE(text, index + 1).end()
        if text.startswith("]", index):
            return index + 1
        while True:
            item, index = element(index)
            into.append(item)
            del item  # the collector keeps what it needs; the element's dict goes now
            index = _SKIP_SPACE(text, index).end()
            if text.startswith("]", index):
                return index + 1
            if not text.startswith(",", index):
                raise ValueError("expected , or ]")
            index = _SKIP_SPACE(text, index + 1).end()

    def mapping(self, index: int, path: Path) -> tuple[dict[str, Any], int]:
        text = self.text
        data: dict[str, Any] = {}
        index = _SKIP_SPACE(text, index + 1).end()
        if text.startswith("}", index):
            return data, index + 1
        while True:
            if not text.startswith('"', index):
                raise ValueError("expected a key")
            key, index = scanstring(text, index + 1)
            index = _SKIP_SPACE(text, index).end()
            if not text.startswith(":", index):
                raise ValueError("expected :")
            value, index = self.value(_SKIP_SPACE(text, index + 1).end(), (*path, key))
            # A key given twice keeps its last value, as json.loads does.
            data[key] = value
            index = _SKIP_SPACE(text, index).end()
            if text.startswith("}", index):
                return data, index + 1
            if not text.startswith(",", index):
                raise ValueError("expected , or }")
            index = _SKIP_SPACE(text, index + 1).end()


class Sources:
    """An array of sources (search results), each entry read as ``loads_streamed`` parses it,
    so that its dict is gone before the next one is read; ``of`` reads an array parsed whole."""

    __slots__ = ()

    def append(self, entry: Any, /) -> None:
        raise NotImplementedError

    @classmethod
    def of(cls, value: Any) -> Self:
        """The array as read while parsing, or a parsed JSON array read now."""
        if isinstance(value, cls):
            return value
        sources = cls()
        for entry in as_list(value):
            sources.append(entry)
        return sources


def search_result(data: dict[str, Any], url: str) -> SearchResult:
    """A source entry (both protocols name its fields alike), with its URL as read."""
    return SearchResult(
        url=url,
        title=as_str(data.get("title")),
        date=as_str(data.get("date")),
        last_updated=as_str(data.get("last_updated")),
        snippet=as_str(data.get("snippet")),
        source=as_str(data.get("source"), "web"),
    )


def distinct(
    indexes: Sequence[int], hashes: array[int], key_of: Callable[[int], Hashable]
) -> Sequence[int]:
    """``indexes`` less those whose key an earlier one has, given the hash of each one's key:
    sources de-duplicated in order, by URL or by a looser key.

    A set of a million keys is about 90 MB (its table alone 32); this keeps a bitmap of the
    hashes seen (2 MB for a million) and looks at keys only where a hash falls on a bit
    already set. A key that comes twice always does, the second time: every duplicate is
    among those, and there the keys, not their hashes, decide.
    """
    size = 1 << max(10, (16 * len(hashes)).bit_length())
    bits = bytearray(size >> 3)
    again: set[int] = set()
    for value in hashes:
        slot = value & (size - 1)
        byte, bit = slot >> 3, 1 << (slot & 7)
        if bits[byte] & bit:
            again.add(value)
        bits[byte] |= bit
    del bits
    if not again:
        return indexes
    seen: set[Hashable] = set()
    kept = array("q")
    for index, value in zip(indexes, hashes, strict=True):
        if value in again:
            key = key_of(index)
            if key in seen:
                continue
            seen.add(key)
        kept.append(index)
    return kept


# Parsed shapes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    title: str = ""
    date: str = ""
    last_updated: str = ""
    snippet: str = ""
    source: str = "web"


@dataclass(frozen=True)
class Image:
    image_url: str
    origin_url: str = ""
    title: str = ""
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class ContentChunk:
    """One typed piece of structured message content."""

    type: str
    text: str = ""
    url: str = ""
    name: str = ""


@dataclass(frozen=True)
class ReasoningStep:
    thought: str = ""
    type: str = ""
    search_keywords: tuple[str, ...] = ()
    fetched_urls: tuple[str, ...] = ()
    code: str = ""
    code_result: str = ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    citation_tokens: int | None = None
    reasoning_tokens: int | None = None
    num_search_queries: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    num_page_fetches: int | None = None
    search_context_size: str = ""
    cost: dict[str, float] = field(default_factory=dict)

    @property
    def total_cost(self) -> float | None:
        return self.cost.get("total_cost")


@dataclass(frozen=True)
class Completion:
    """The ``response`` of a COMPLETED job: a chat completion."""

    id: str = ""
    model: str = ""
    created: datetime | None = None
    content: str = ""
    chunks: tuple[ContentChunk, ...] = ()
    reasoning_steps: tuple[ReasoningStep, ...] = ()
    citations: tuple[str, ...] = ()
    search_results: tuple[SearchResult, ...] = ()
    images: tuple[Image, ...] = ()
    related_questions: tuple[str, ...] = ()
    usage: Usage | None = None
    finish_reason: str = ""
    # Why a finished answer is partial (the Agent API's ``incomplete_details.reason``).
    incomplete_reason: str = ""

    @property
    def total_cost(self) -> float | None:
        return self.usage.total_cost if self.usage else None


@dataclass(frozen=True)
class JobSummary:
    """A job (a Sonar job or an Agent run) as a list or a poll describes it. ``status`` is in
    sonarweb's vocabulary (``STATUSES``) or, for a status upstream invented since, verbatim."""

    id: str
    status: str
    model: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class Job(JobSummary):
    """A job with its answer: ``response`` is the answer so far (partial while running)."""

    error_message: str = ""
    response: Completion | None = None
    incomplete_reason: str = ""


@dataclass(frozen=True)
class JobPage:
    jobs: tuple[JobSummary, ...]
    next_token: str | None = None
