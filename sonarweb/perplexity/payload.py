"""Tolerant parsing of the async Sonar API's JSON into small dataclasses.

Upstream fields come and go: every optional field may be missing or null and new
fields appear. Parsing never raises on a field it does not understand; it only
raises ``PayloadError`` when the document is not a job at all (no id or status).
The raw JSON is always kept by the caller, so nothing is lost by ignoring fields.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUSES = ("CREATED", "IN_PROGRESS", "COMPLETED", "FAILED")
FINISHED_STATUSES = ("COMPLETED", "FAILED")


class PayloadError(ValueError):
    """The JSON is not the shape of document that was expected."""


# NUL and lone surrogates (from "\\u0000" or "\\ud800" escapes) are valid in JSON strings
# but not in the text of either database: PostgreSQL refuses NUL, and neither SQLite nor
# PostgreSQL can encode a lone surrogate as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """The string with NUL removed and lone surrogates replaced by U+FFFD."""
    if not _UNSTORABLE.search(value):
        return value
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def _str(value: Any, default: str = "") -> str:
    """Every string taken from upstream passes here, so none can carry unstorable text."""
    if value is None:
        return default
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float | bool):
        return str(value)
    return default


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = value if isinstance(value, float) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    if number is None or not math.isfinite(number):
        return None
    return int(number)


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    number: float | None = float(value) if isinstance(value, int | float) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    return number if number is not None and math.isfinite(number) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def timestamp(value: Any) -> datetime | None:
    """Unix seconds (int, float or numeric string) as an aware UTC datetime."""
    seconds = _float(value)
    if seconds is None or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
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
    search_context_size: str = ""
    cost: dict[str, float] = field(default_factory=dict)

    @property
    def total_cost(self) -> float | None:
        return self.cost.get("total_cost")

    def token_rows(self) -> list[tuple[str, int]]:
        names = (
            ("Prompt", self.prompt_tokens),
            ("Completion", self.completion_tokens),
            ("Citation", self.citation_tokens),
            ("Reasoning", self.reasoning_tokens),
            ("Search queries", self.num_search_queries),
            ("Total", self.total_tokens),
        )
        return [(label, value) for label, value in names if value is not None]


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

    @property
    def total_cost(self) -> float | None:
        return self.usage.total_cost if self.usage else None


@dataclass(frozen=True)
class JobSummary:
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
    error_message: str = ""
    response: Completion | None = None


@dataclass(frozen=True)
class JobPage:
    jobs: tuple[JobSummary, ...]
    next_token: str | None = None


def _url_of(value: Any) -> str:
    """Chunk URLs are either a string or ``{"url": ...}``."""
    if isinstance(value, dict):
        return _str(value.get("url"))
    return _str(value)


def parse_chunk(raw: Any) -> ContentChunk | None:
    if isinstance(raw, str):
        return ContentChunk(type="text", text=_str(raw))
    if not isinstance(raw, dict):
        return None
    kind = _str(raw.get("type"), "text")
    if kind == "text":
        return ContentChunk(type="text", text=_str(raw.get("text")))
    if kind in ("image_url", "file_url", "pdf_url", "video_url"):
        return ContentChunk(type=kind, url=_url_of(raw.get(kind)), name=_str(raw.get("file_name")))
    text = _str(raw.get("text"))
    return ContentChunk(type=kind, text=text) if text else None


def parse_content(raw: Any) -> tuple[str, tuple[ContentChunk, ...]]:
    """Message content as (joined text, non-text chunks)."""
    if isinstance(raw, str):
        return _str(raw), ()
    if isinstance(raw, dict):
        raw = [raw]
    texts: list[str] = []
    others: list[ContentChunk] = []
    for item in _list(raw):
        chunk = parse_chunk(item)
        if chunk is None:
            continue
        if chunk.type == "text":
            texts.append(chunk.text)
        else:
            others.append(chunk)
    return "".join(texts), tuple(others)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(s for s in (_str(v) for v in _list(value)) if s)


def parse_reasoning_step(raw: Any) -> ReasoningStep | None:
    data = _dict(raw)
    if not data:
        return None
    kind = _str(data.get("type"))
    detail = _dict(data.get(kind)) if kind else {}
    web_search = _dict(data.get("web_search")) or (detail if kind == "web_search" else {})
    fetch = _dict(data.get("fetch_url_content")) or (detail if kind == "fetch_url_content" else {})
    code = _dict(data.get("execute_python")) or (detail if kind == "execute_python" else {})
    fetched = _strings(fetch.get("urls")) or tuple(
        _str(_dict(c).get("url")) for c in _list(fetch.get("contents")) if _dict(c).get("url")
    )
    return ReasoningStep(
        thought=_str(data.get("thought")),
        type=kind,
        search_keywords=_strings(web_search.get("search_keywords")),
        fetched_urls=fetched,
        code=_str(code.get("code")),
        code_result=_str(code.get("result")),
    )


def parse_usage(raw: Any) -> Usage | None:
    data = _dict(raw)
    if not data:
        return None
    cost = {
        clean_text(str(k)): v
        for k, v in ((k, _float(v)) for k, v in _dict(data.get("cost")).items())
        if v is not None
    }
    return Usage(
        prompt_tokens=_int(data.get("prompt_tokens")),
        completion_tokens=_int(data.get("completion_tokens")),
        total_tokens=_int(data.get("total_tokens")),
        citation_tokens=_int(data.get("citation_tokens")),
        reasoning_tokens=_int(data.get("reasoning_tokens")),
        num_search_queries=_int(data.get("num_search_queries")),
        search_context_size=_str(data.get("search_context_size")),
        cost=cost,
    )


def parse_search_result(raw: Any) -> SearchResult | None:
    data = _dict(raw)
    url = _str(data.get("url"))
    if not url:
        return None
    return SearchResult(
        url=url,
        title=_str(data.get("title")),
        date=_str(data.get("date")),
        last_updated=_str(data.get("last_updated")),
        snippet=_str(data.get("snippet")),
        source=_str(data.get("source"), "web"),
    )


def parse_image(raw: Any) -> Image | None:
    data = _dict(raw)
    image_url = _str(data.get("image_url"))
    if not image_url:
        return None
    width, height = _int(data.get("width")), _int(data.get("height"))
    return Image(
        image_url=image_url,
        origin_url=_str(data.get("origin_url")),
        title=_str(data.get("title")),
        width=width if width and width > 0 else None,
        height=height if height and height > 0 else None,
    )


def parse_completion(raw: Any) -> Completion | None:
    data = _dict(raw)
    if not data:
        return None
    choices = _list(data.get("choices"))
    first = _dict(choices[0]) if choices else {}
    message = _dict(first.get("message")) or _dict(first.get("delta"))
    content, chunks = parse_content(message.get("content"))
    steps = tuple(
        s for s in (parse_reasoning_step(r) for r in _list(message.get("reasoning_steps"))) if s
    )
    return Completion(
        id=_str(data.get("id")),
        model=_str(data.get("model")),
        created=timestamp(data.get("created")),
        content=content,
        chunks=chunks,
        reasoning_steps=steps,
        citations=_strings(data.get("citations")),
        search_results=tuple(
            r for r in (parse_search_result(x) for x in _list(data.get("search_results"))) if r
        ),
        images=tuple(i for i in (parse_image(x) for x in _list(data.get("images"))) if i),
        related_questions=_strings(data.get("related_questions")),
        usage=parse_usage(data.get("usage")),
        finish_reason=_str(first.get("finish_reason")),
    )


def _summary_fields(data: dict[str, Any]) -> dict[str, Any]:
    job_id = _str(data.get("id")).strip()
    status = _str(data.get("status")).strip().upper()
    if not job_id or not status:
        raise PayloadError("The answer is not a job: it has no id or no status.")
    return {
        "id": job_id,
        "status": status,
        "model": _str(data.get("model")),
        "created_at": timestamp(data.get("created_at")),
        "started_at": timestamp(data.get("started_at")),
        "completed_at": timestamp(data.get("completed_at")),
        "failed_at": timestamp(data.get("failed_at")),
    }


def parse_summary(raw: Any) -> JobSummary:
    return JobSummary(**_summary_fields(_dict(raw)))


def parse_job(raw: Any) -> Job:
    data = _dict(raw)
    if "requests" in data and "id" not in data:
        raise PayloadError("The answer is a list of jobs, not the job that was asked for.")
    return Job(
        **_summary_fields(data),
        error_message=_str(data.get("error_message")),
        response=parse_completion(data.get("response")),
    )


def parse_page(raw: Any) -> JobPage:
    data = _dict(raw)
    if not isinstance(data.get("requests"), list):
        raise PayloadError("The answer is not a list of jobs.")
    jobs: list[JobSummary] = []
    for item in data["requests"]:
        try:
            jobs.append(parse_summary(item))
        except PayloadError:
            continue
    token = _str(data.get("next_token")) or None
    return JobPage(jobs=tuple(jobs), next_token=token)


def loads_job(text: str) -> Job:
    """Parse stored raw JSON text of a job."""
    try:
        return parse_job(json.loads(text))
    except json.JSONDecodeError as exc:
        raise PayloadError("The stored answer is not JSON.") from exc
