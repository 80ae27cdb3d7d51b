"""What the MCP tools do, as plain synchronous Django (``db`` runs each call in a worker
thread through ``sync_to_async``: the ORM is never touched from async code).

Everything is the JSON API's own: starts go through ``sonarweb/api/starts.py`` (so the API and
MCP share one idempotency table), requests are described by ``serialize.request_out`` (sonarweb's
id and status vocabulary, never the upstream id), answers are cut by ``sections.py``, and
cancels are the page's and the API's ``cancel_as``. Refusals are ``ToolError``s whose message
says what to do next; an agent reads them as the tool's answer.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils.html import strip_tags
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from sonarweb.accounts.views.access import may_manage
from sonarweb.api import starts
from sonarweb.api.problems import SEARCH_TOO_SLOW, Problem
from sonarweb.api.schemas import FiltersIn, ResearchIn
from sonarweb.api.sections import Section, split_sections
from sonarweb.api.serialize import request_out, section_list, sources_of
from sonarweb.api.throttling import take_write
from sonarweb.tracker.archive.search import Filters, Search, SearchTooSlow
from sonarweb.tracker.listing import filtered
from sonarweb.tracker.models import AnswerArchive, TrackedRequest
from sonarweb.tracker.views.cancel import cancel_as

from .caller import Caller

SUMMARY_CHARS = 600
# read_answer's pages: consecutive sections up to about this many characters (a section is
# never split across pages; sections.py already cuts long ones at SECTION_CHARS).
PAGE_CHARS = 12_000
MAX_LIST = 50
ANSWER_URI = "sonarweb://requests/{id}/answer"
# What a request looks like in lists (search_archive, list_recent).
BRIEF_FIELDS = (
    "id",
    "status",
    "status_label",
    "finished",
    "has_answer",
    "title",
    "added_by",
    "created_at",
    "completed_at",
    "permalink",
    "poll_after_seconds",
)
_T = TypeVar("_T")
READ_ONLY = (
    "This token has the read scope: it can get, read, search, list and wait, but not start "
    "or cancel research. Make a token with the write scope in sonarweb's Settings."
)


# -- plumbing -----------------------------------------------------------------------------------


async def db(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run ``fn`` in a worker thread, away from the event loop, as one unit of database work:
    connections past their age are closed before and after, as Django does around each
    request. Not thread-sensitive, so one slow start never holds up another's read."""

    def run() -> _T:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(run, thread_sensitive=False)()


@contextmanager
def problems_as_tool_errors() -> Iterator[None]:
    """The API's problems (rate limits, refusals, upstream trouble) as tool errors."""
    try:
        yield
    except Problem as problem:
        wait = problem.extra.get("retry_after")
        suffix = f" (Try again in {wait} s.)" if wait and "again in" not in problem.detail else ""
        raise ToolError(problem.detail + suffix) from problem


def _require_write(caller: Caller) -> None:
    if not caller.token.may_write:
        raise ToolError(READ_ONLY)
    with problems_as_tool_errors():
        take_write(caller.token)


def tracked_request(value: str) -> TrackedRequest:
    # The request's id; its permalink (…/r/<id>/) works too.
    slug = value.strip().rstrip("/").rsplit("/", 1)[-1]
    tracked = TrackedRequest.objects.select_related("added_by").filter(slug=slug).first()
    if not slug or tracked is None:
        raise ToolError(
            f"There is no request with the id {value!r}. Use the id start_research, "
            "list_recent or search_archive gave."
        )
    return tracked


def research_out(caller: Caller, tracked: TrackedRequest) -> dict[str, Any]:
    """The request as the API describes it (without the API's own answer URL)."""
    out = request_out(caller.request, tracked)
    out.pop("answer_url", None)
    if tracked.has_answer:
        out["answer_resource"] = ANSWER_URI.format(id=tracked.slug)
    return out


def _brief(caller: Caller, tracked: TrackedRequest) -> dict[str, Any]:
    out = request_out(caller.request, tracked)
    return {name: out[name] for name in BRIEF_FIELDS}


def _next_step(tracked: TrackedRequest, wait: int | None) -> str:
    if tracked.has_answer:
        return "Finished: read it with read_answer (one section at a time)."
    if wait is not None:
        return (
            f"Still running: call wait_for_research (it returns within 50 s), or "
            f"get_research after {wait} s."
        )
    return "Finished without an answer to read: status_sentence says why."


# -- start and cancel ---------------------------------------------------------------------------


def start(
    caller: Caller,
    *,
    question: str,
    preset: str,
    filters: FiltersIn | None,
    idempotency_key: str,
) -> dict[str, Any]:
    """Start research with the caller's saved Perplexity key, once per idempotency key."""
    _require_write(caller)
    try:
        body = ResearchIn(question=question, preset=preset, filters=filters or FiltersIn())
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise ToolError(f"Not a valid start: check {fields}.") from exc
    with problems_as_tool_errors():
        started = starts.start(caller.user, idempotency_key, body)
    out = research_out(caller, started.tracked)
    out["replayed"] = started.replayed
    out["next"] = _next_step(started.tracked, out["poll_after_seconds"])
    return out


def cancel(caller: Caller, value: str) -> dict[str, Any]:
    """Ask for a running request to stop (its adder, or staff)."""
    _require_write(caller)
    tracked = tracked_request(value)
    if not may_manage(caller.user, tracked):
        raise ToolError("Only staff and the member who added a request can cancel it.")
    result = cancel_as(caller.user, tracked)
    if result.outcome != "sent" and result.refusal != "already":
        raise ToolError(result.sentence)
    out = research_out(caller, tracked_request(tracked.slug))
    out["message"] = result.sentence
    return out


# -- read ---------------------------------------------------------------------------------------


def _archive(tracked: TrackedRequest) -> AnswerArchive:
    archive = AnswerArchive.objects.only("markdown", "raw_json").filter(pk=tracked.pk).first()
    if archive is None:  # pragma: no cover - has_answer means archived
        raise ToolError("This request's answer is not in the archive.")
    return archive


def _summary(markdown: str) -> str:
    text = markdown.strip()
    if len(text) <= SUMMARY_CHARS:
        return text
    cut = text[:SUMMARY_CHARS]
    space = cut.rfind(" ")
    return (cut[:space] if space > SUMMARY_CHARS // 2 else cut).rstrip() + "…"


def get(caller: Caller, value: str) -> dict[str, Any]:
    """The request; once answered, a summary, its sections and its sources."""
    tracked = tracked_request(value)
    out = research_out(caller, tracked)
    if tracked.has_answer:
        archive = _archive(tracked)
        markdown = archive.markdown or ""
        sections = split_sections(markdown)
        out["summary"] = _summary(markdown)
        out["total_length"] = len(markdown)
        out["section_count"] = len(sections)
        out["sections"] = section_list(sections)
        out["sources"] = sources_of(archive)
    out["next"] = _next_step(tracked, out["poll_after_seconds"])
    return out


def _pages(sections: list[Section]) -> list[list[Section]]:
    pages: list[list[Section]] = []
    size = 0
    for section in sections:
        if pages and size + section.length <= PAGE_CHARS:
            pages[-1].append(section)
            size += section.length
        else:
            pages.append([section])
            size = section.length
    return pages


def _not_answered(tracked: TrackedRequest, wait: int | None) -> ToolError:
    if wait is not None:
        return ToolError(
            f"The research is still running ({tracked.status_label}): call wait_for_research, "
            f"or read_answer again after {wait} s."
        )
    return ToolError(f"This request has no answer to read. {tracked.status_sentence}".strip())


def read(
    caller: Caller, value: str, *, section: int | None = None, page: int | None = None
) -> dict[str, Any]:
    """One section (or one page of sections) of the answer; the first section by default."""
    if section is not None and page is not None:
        raise ToolError("Give a section or a page, not both.")
    tracked = tracked_request(value)
    out = research_out(caller, tracked)
    if not tracked.has_answer:
        raise _not_answered(tracked, out["poll_after_seconds"])
    sections = split_sections(_archive(tracked).markdown or "")
    pages = _pages(sections)
    count = len(sections)
    if page is not None:
        if not 1 <= page <= max(len(pages), 1):
            raise ToolError(f"This answer has {len(pages)} pages (1 to {len(pages)}).")
        chosen = pages[page - 1] if pages else []
    else:
        number = section or 1
        if count and not 1 <= number <= count:
            raise ToolError(f"This answer has {count} sections (1 to {count}).")
        chosen = [sections[number - 1]] if count else []
    last = chosen[-1].index if chosen else 0
    return {
        "id": tracked.slug,
        "title": out["title"],
        "status": out["status"],
        "section": chosen[0].index if chosen and page is None else None,
        "page": page,
        "sections_shown": section_list(chosen),
        "section_count": count,
        "page_count": len(pages),
        "next_section": last + 1 if last < count else None,
        "next_page": page + 1 if page is not None and page < len(pages) else None,
        "markdown": "".join(s.text for s in chosen),
        "permalink": out["permalink"],
    }


def answer_markdown(caller: Caller, value: str) -> str:
    """The whole answer, for the resource (clients that read resources)."""
    tracked = tracked_request(value)
    if not tracked.has_answer:
        raise _not_answered(tracked, research_out(caller, tracked)["poll_after_seconds"])
    return _archive(tracked).markdown or ""


def search(caller: Caller, query: str, limit: int) -> dict[str, Any]:
    """The team's archive, best matches first."""
    text = (query or "").strip()
    if not text:
        raise ToolError("Give some words to search for.")
    found = Search(text)
    try:
        ids = found.page(Filters(), offset=0, limit=limit)
        snippets = found.snippets(ids)
    except SearchTooSlow as exc:
        raise ToolError(SEARCH_TOO_SLOW) from exc
    rows = TrackedRequest.objects.select_related("added_by").in_bulk(ids)
    items = []
    for pk in ids:
        if pk not in rows:
            continue
        item = _brief(caller, rows[pk])
        # Snippets without their <mark> tags: they are shown to a model, not a browser.
        item["matches"] = [
            {"field": s.field, "text": html.unescape(strip_tags(str(s.html)))}
            for s in snippets.get(pk, [])
        ]
        items.append(item)
    return {"query": text, "count": len(items), "items": items}


def recent(caller: Caller, limit: int) -> dict[str, Any]:
    """The team's newest requests."""
    rows = filtered(Filters()).select_related("added_by").order_by("-created", "-id")[:limit]
    items = [_brief(caller, row) for row in rows]
    return {"count": len(items), "items": items}


# -- waiting ------------------------------------------------------------------------------------


def state(caller: Caller, value: str) -> dict[str, Any]:
    """The request as wait_for_research watches it: read from the database only."""
    tracked = tracked_request(value)
    out = research_out(caller, tracked)
    # Nothing will move it any more: finished, or sonarweb has stopped asking upstream.
    out["settled"] = tracked.is_finished or out["poll_after_seconds"] is None
    out["next"] = _next_step(tracked, out["poll_after_seconds"])
    return out


def change_key(out: dict[str, Any]) -> tuple[Any, ...]:
    """What counts as a change of status for wait_for_research."""
    return (out["status"], out["cancelling"], out["has_answer"], out["finished"])
