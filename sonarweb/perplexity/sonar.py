"""The async Sonar API's JSON, read into the shared shapes of ``payload.py``.

Perplexity retired the Sonar API on 2026-09-27 (every Sonar path answers 403
``chat_completions_not_available``). Teams' archives hold Sonar answers, and people bring
saved Sonar JSON in, so this reader stays: every archived Sonar answer is rendered from it.
"""

from __future__ import annotations

from typing import Any

from .payload import (
    Collectors,
    Completion,
    ContentChunk,
    Image,
    Job,
    JobPage,
    JobSummary,
    PayloadError,
    ReasoningStep,
    SearchResult,
    Sources,
    Usage,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    clean_text,
    loads_streamed,
    search_result,
    timestamp,
)

# Paths of the Sonar API (all answer 403 since the retirement).
JOBS_PATH = "/v1/async/sonar"


def parse_chunk(raw: Any) -> ContentChunk | None:
    if isinstance(raw, str):
        return ContentChunk(type="text", text=as_str(raw))
    if not isinstance(raw, dict):
        return None
    kind = as_str(raw.get("type"), "text")
    if kind == "text":
        return ContentChunk(type="text", text=as_str(raw.get("text")))
    if kind in ("image_url", "file_url", "pdf_url", "video_url"):
        # The URL is either a string or ``{"url": ...}``.
        url = raw.get(kind)
        url = url.get("url") if isinstance(url, dict) else url
        return ContentChunk(type=kind, url=as_str(url), name=as_str(raw.get("file_name")))
    text = as_str(raw.get("text"))
    return ContentChunk(type=kind, text=text) if text else None


def parse_content(raw: Any) -> tuple[str, tuple[ContentChunk, ...]]:
    """Message content as (joined text, non-text chunks)."""
    if isinstance(raw, str):
        return as_str(raw), ()
    if isinstance(raw, dict):
        raw = [raw]
    texts: list[str] = []
    others: list[ContentChunk] = []
    for item in as_list(raw):
        chunk = parse_chunk(item)
        if chunk is None:
            continue
        if chunk.type == "text":
            texts.append(chunk.text)
        else:
            others.append(chunk)
    return "".join(texts), tuple(others)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(s for s in (as_str(v) for v in as_list(value)) if s)


def parse_reasoning_step(raw: Any) -> ReasoningStep | None:
    data = as_dict(raw)
    if not data:
        return None
    kind = as_str(data.get("type"))
    web_search = as_dict(data.get("web_search"))
    fetch = as_dict(data.get("fetch_url_content"))
    code = as_dict(data.get("execute_python"))
    fetched = _strings(fetch.get("urls")) or tuple(
        as_str(as_dict(c).get("url"))
        for c in as_list(fetch.get("contents"))
        if as_dict(c).get("url")
    )
    return ReasoningStep(
        thought=as_str(data.get("thought")),
        type=kind,
        search_keywords=_strings(web_search.get("search_keywords")),
        fetched_urls=fetched,
        code=as_str(code.get("code")),
        code_result=as_str(code.get("result")),
    )


def parse_usage(raw: Any) -> Usage | None:
    data = as_dict(raw)
    if not data:
        return None
    cost = {
        clean_text(str(k)): v
        for k, v in ((k, as_float(v)) for k, v in as_dict(data.get("cost")).items())
        if v is not None
    }
    return Usage(
        prompt_tokens=as_int(data.get("prompt_tokens")),
        completion_tokens=as_int(data.get("completion_tokens")),
        total_tokens=as_int(data.get("total_tokens")),
        citation_tokens=as_int(data.get("citation_tokens")),
        reasoning_tokens=as_int(data.get("reasoning_tokens")),
        num_search_queries=as_int(data.get("num_search_queries")),
        search_context_size=as_str(data.get("search_context_size")),
        cost=cost,
    )


class _Results(Sources):
    """A completion's ``search_results``."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[SearchResult] = []

    def append(self, entry: Any) -> None:
        data = as_dict(entry)
        url = as_str(data.get("url"))
        if url:
            self.items.append(search_result(data, url))


# Where the sources are in a job, for ``payload.loads_streamed``.
SOURCE_ARRAYS: Collectors = {("response", "search_results"): _Results}


def parse_image(raw: Any) -> Image | None:
    data = as_dict(raw)
    image_url = as_str(data.get("image_url"))
    if not image_url:
        return None
    width, height = as_int(data.get("width")), as_int(data.get("height"))
    return Image(
        image_url=image_url,
        origin_url=as_str(data.get("origin_url")),
        title=as_str(data.get("title")),
        width=width if width and width > 0 else None,
        height=height if height and height > 0 else None,
    )


def parse_completion(raw: Any) -> Completion | None:
    data = as_dict(raw)
    if not data:
        return None
    choices = as_list(data.get("choices"))
    first = as_dict(choices[0]) if choices else {}
    message = as_dict(first.get("message")) or as_dict(first.get("delta"))
    content, chunks = parse_content(message.get("content"))
    steps = tuple(
        s for s in (parse_reasoning_step(r) for r in as_list(message.get("reasoning_steps"))) if s
    )
    return Completion(
        id=as_str(data.get("id")),
        model=as_str(data.get("model")),
        created=timestamp(data.get("created")),
        content=content,
        chunks=chunks,
        reasoning_steps=steps,
        citations=_strings(data.get("citations")),
        search_results=tuple(_Results.of(data.get("search_results")).items),
        images=tuple(i for i in (parse_image(x) for x in as_list(data.get("images"))) if i),
        related_questions=_strings(data.get("related_questions")),
        usage=parse_usage(data.get("usage")),
        finish_reason=as_str(first.get("finish_reason")),
    )


def _summary_fields(data: dict[str, Any]) -> dict[str, Any]:
    job_id = as_str(data.get("id")).strip()
    status = as_str(data.get("status")).strip().upper()
    if not job_id or not status:
        raise PayloadError("The answer is not a job: it has no id or no status.")
    return {
        "id": job_id,
        "status": status,
        "model": as_str(data.get("model")),
        "created_at": timestamp(data.get("created_at")),
        "started_at": timestamp(data.get("started_at")),
        "completed_at": timestamp(data.get("completed_at")),
        "failed_at": timestamp(data.get("failed_at")),
    }


def parse_job(raw: Any) -> Job:
    data = as_dict(raw)
    if "requests" in data and "id" not in data:
        raise PayloadError("The answer is a list of jobs, not the job that was asked for.")
    return Job(
        **_summary_fields(data),
        error_message=as_str(data.get("error_message")),
        response=parse_completion(data.get("response")),
    )


def parse_page(raw: Any) -> JobPage:
    data = as_dict(raw)
    if not isinstance(data.get("requests"), list):
        raise PayloadError("The answer is not a list of jobs.")
    jobs: list[JobSummary] = []
    for item in data["requests"]:
        try:
            jobs.append(JobSummary(**_summary_fields(as_dict(item))))
        except PayloadError:
            continue
    token = as_str(data.get("next_token")) or None
    return JobPage(jobs=tuple(jobs), next_token=token)


def loads_job(text: str) -> Job:
    """Parse stored raw JSON text of a job, its sources read as they are parsed."""
    try:
        raw = loads_streamed(text, SOURCE_ARRAYS)
    except (ValueError, RecursionError) as exc:
        raise PayloadError("The stored answer is not JSON.") from exc
    return parse_job(raw)
