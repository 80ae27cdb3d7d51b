"""The Agent API's background runs, read into the shared shapes of ``payload.py``.

The contract (``shared/reference/perplexity-agent-api.md``) in what this module does:

- Statuses map onto sonarweb's vocabulary: ``queued`` CREATED, ``in_progress`` IN_PROGRESS,
  ``completed`` COMPLETED, ``incomplete`` INCOMPLETE, ``failed`` FAILED (it arrives with
  HTTP 200), ``cancelled`` CANCELLED. A run with a non-null ``error`` is terminal whatever its
  status says. Any other status is kept verbatim and treated as still running.
- The answer is every ``output_text`` part of every ``message`` item, joined; partial output
  while the run is in progress is read the same way.
- Sources are the results of every ``search_results`` item, then the contents of every
  ``fetch_url_results`` item, de-duplicated by URL. Other output item types are ignored (the
  raw JSON keeps them).
- Inline markers ``[N]`` and ``[web:N]`` point at the search result whose ``id`` is N (seen in
  captures, undocumented). They are rewritten here into the numbering the renderer shares
  with Sonar answers (``[k]`` is ``citations[k-1]``), outside code. A marker whose N matches
  no result is escaped, so it stays plain text rather than becoming a wrong link.
  ``url_citation`` annotations, when present, add a marker at their end.
- ``created_at`` moves between polls and ``model`` names the preset until the run completes:
  the caller keeps its own submit time and shows the model it is given.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator
from typing import Any

from .payload import (
    FINISHED_STATUSES,
    Collectors,
    Completion,
    Job,
    PayloadError,
    SearchResult,
    Sources,
    Usage,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    clean_text,
    distinct,
    search_result,
    timestamp,
)

RUNS_PATH = "/v1/agent"
MODELS_PATH = "/v1/models"
RUN_PREFIX = "resp_"
_RUN_ID = re.compile(r"resp_[A-Za-z0-9][A-Za-z0-9_-]{0,100}")

STATUS_MAP = {
    "queued": "CREATED",
    "in_progress": "IN_PROGRESS",
    "completed": "COMPLETED",
    "incomplete": "INCOMPLETE",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
}

# The API answers 400 to any unknown field, so nothing but the fields ``build_request`` maps
# may ever be put in a create body.
PRESETS = ("fast", "low", "medium", "high", "xhigh")

# One marker, or a comma list of them: [3], [web:3], [web:3, web:4], [3, 4].
_MARKER = re.compile(r"\[\s*((?:web:)?\d{1,6}(?:\s*,\s*(?:web:)?\d{1,6})*)\s*\]")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# Stands for a marker added from an annotation until the text's own markers are rewritten.
_ANNOTATION = "\ue000"


def is_run_id(request_id: str) -> bool:
    """Whether an id names an Agent run (``resp_<uuid>``) rather than a Sonar job."""
    return request_id.startswith(RUN_PREFIX)


def valid_run_id(request_id: str) -> bool:
    return bool(_RUN_ID.fullmatch(request_id))


def looks_like_response(raw: Any) -> bool:
    """Whether a JSON document is an Agent Response (and not a Sonar job)."""
    data = as_dict(raw)
    if data.get("object") == "response":
        return True
    return is_run_id(as_str(data.get("id"))) or isinstance(data.get("output"), list)


# -- the create body ---------------------------------------------------------------------------


def build_request(
    question: str,
    *,
    preset: str = "medium",
    model: str = "",
    instructions: str = "",
    domains: list[str] | None = None,
    recency: str = "",
    after_date: str = "",
    before_date: str = "",
    updated_after: str = "",
    updated_before: str = "",
    effort: str = "",
    max_output_tokens: int | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v1/agent`` for a background research run, with only the fields the
    contract maps (dates in MM/DD/YYYY, domains scheme-less with ``-`` to deny).

    With a ``model`` instead of a preset, web search is not automatic: a ``web_search`` tool
    is always listed then. With a preset, a tool is listed only to carry filters; since the
    sources disagree on whether that replaces the preset's tools, it is ``web_search``.
    """
    body: dict[str, Any] = {"input": question, "background": True}
    if model:
        body["model"] = model
    else:
        body["preset"] = preset
    filters: dict[str, Any] = {
        name: value
        for name, value in (
            ("search_domain_filter", list(domains or ())),
            ("search_recency_filter", recency),
            ("search_after_date_filter", after_date),
            ("search_before_date_filter", before_date),
            ("last_updated_after_filter", updated_after),
            ("last_updated_before_filter", updated_before),
        )
        if value
    }
    if model or filters:
        tool: dict[str, Any] = {"type": "web_search"}
        if filters:
            tool["filters"] = filters
        body["tools"] = [tool]
    if effort:
        body["reasoning"] = {"effort": effort}
    if max_output_tokens:
        body["max_output_tokens"] = max_output_tokens
    if instructions:
        body["instructions"] = instructions
    return body


# -- reading a Response ------------------------------------------------------------------------


def _status(data: dict[str, Any]) -> str:
    raw = as_str(data.get("status")).strip()
    status = STATUS_MAP.get(raw.lower(), raw)
    if data.get("error") not in (None, {}, "") and status not in FINISHED_STATUSES:
        # A non-null error is terminal whatever the status says.
        return "FAILED"
    return status


class _Entries(Sources):
    """One ``results`` or ``contents`` array of an output item, read as sources (its entries'
    URLs, stripped, and search result ids)."""

    __slots__ = ("numbers", "results")

    def __init__(self) -> None:
        self.results: list[SearchResult] = []
        # The entry's ``id``: what the answer's markers point at (search results only).
        self.numbers: list[int | None] = []

    def append(self, entry: Any) -> None:
        raw = as_dict(entry)
        url = as_str(raw.get("url")).strip()
        if url:
            self.numbers.append(as_int(raw.get("id")))
            self.results.append(search_result(raw, url))


# Where the sources are in a Response, for ``payload.loads_streamed``.
SOURCE_ARRAYS: Collectors = {
    ("output", "*", "results"): _Entries,
    ("output", "*", "contents"): _Entries,
}


def _results(output: list[Any]) -> tuple[list[SearchResult], dict[int, str]]:
    """Sources in order (search results, then fetched pages), de-duplicated by URL, and each
    search result id's URL."""
    results: list[SearchResult] = []
    hashes = array("q")
    ids: dict[int, str] = {}
    for item in output:
        data = as_dict(item)
        kind = data.get("type")
        if kind not in ("search_results", "fetch_url_results"):
            continue
        searched = kind == "search_results"
        entries = _Entries.of(data.get("results" if searched else "contents"))
        for result, number in zip(entries.results, entries.numbers, strict=True):
            if searched and number is not None and number not in ids:
                ids[number] = result.url
            results.append(result)
            hashes.append(hash(result.url))
    firsts = distinct(range(len(results)), hashes, lambda index: results[index].url)
    if len(firsts) < len(results):
        results = [results[index] for index in firsts]
    return results, ids


def _parts(output: list[Any]) -> Iterator[tuple[str, list[Any]]]:
    """(text, annotations) of every output_text part of every message item, in order."""
    for item in output:
        data = as_dict(item)
        if data.get("type") != "message":
            continue
        for part in as_list(data.get("content")):
            part_data = as_dict(part)
            if part_data.get("type", "output_text") == "output_text":
                text = as_str(part_data.get("text"))
                yield text, as_list(part_data.get("annotations"))


def _annotate(text: str, annotations: list[Any], number_of: dict[str, int]) -> str:
    """Add a marker at the end of each url_citation annotation (stand-ins until rewritten)."""
    inserts: list[tuple[int, int]] = []
    for annotation in annotations:
        data = as_dict(annotation)
        if data.get("type", "url_citation") != "url_citation":
            continue
        url = as_str(data.get("url")).strip()
        end = as_int(data.get("end_index"))
        if not url or end is None or not 0 <= end <= len(text):
            continue
        number = number_of.setdefault(url, len(number_of) + 1)
        inserts.append((end, number))
    for end, number in sorted(inserts, reverse=True):
        text = f"{text[:end]}{_ANNOTATION}{number}{_ANNOTATION}{text[end:]}"
    return text


def _rewrite_markers(text: str, position: dict[int, int]) -> str:
    def one(match: re.Match[str]) -> str:
        ids = [int(n.strip().removeprefix("web:")) for n in match.group(1).split(",")]
        if all(n in position for n in ids):
            return "[" + ", ".join(str(position[n]) for n in ids) + "]"
        return "\\[" + match.group(0)[1:-1] + "\\]"

    return _MARKER.sub(one, text)


def _outside_code(text: str, position: dict[int, int]) -> str:
    """Rewrite markers in prose only: fenced blocks and code spans keep ``a[1]`` as code."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        opener = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = None
            continue
        if opener:
            fence = opener.group(1)
            out.append(line)
            continue
        pieces: list[str] = []
        last = 0
        for span in _CODE_SPAN.finditer(line):
            pieces.append(_rewrite_markers(line[last : span.start()], position))
            pieces.append(span.group(0))
            last = span.end()
        pieces.append(_rewrite_markers(line[last:], position))
        out.append("".join(pieces))
    return "".join(out)


def _completion(data: dict[str, Any], status: str) -> Completion:
    output = as_list(data.get("output"))
    results, ids = _results(output)
    # Citations: the search results that have ids, in id order, one number per URL.
    number_of: dict[str, int] = {}
    for _, url in sorted(ids.items()):
        number_of.setdefault(url, len(number_of) + 1)
    position = {n: number_of[url] for n, url in ids.items()}
    texts = [_annotate(text, notes, number_of) for text, notes in _parts(output)]
    content = "\n\n".join(t for t in texts if t)
    content = _outside_code(content, position)
    content = re.sub(f"{_ANNOTATION}(\\d+){_ANNOTATION}", r"[\1]", content)
    citations = tuple(number_of)
    details = as_dict(data.get("incomplete_details"))
    return Completion(
        id=as_str(data.get("id")),
        model=as_str(data.get("model")),
        created=timestamp(data.get("completed_at")) or timestamp(data.get("created_at")),
        content=content,
        citations=citations,
        search_results=tuple(results),
        usage=parse_usage(data.get("usage")),
        finish_reason="length" if status == "INCOMPLETE" else "",
        incomplete_reason=as_str(details.get("reason")),
    )


def parse_usage(raw: Any) -> Usage | None:
    data = as_dict(raw)
    if not data:
        return None
    inputs = as_dict(data.get("input_tokens_details"))
    outputs = as_dict(data.get("output_tokens_details"))
    tools = as_dict(data.get("tool_calls_details"))
    cost_data = as_dict(data.get("cost"))
    cost: dict[str, float] = {}
    for ours, theirs in (
        ("input_tokens_cost", "input_cost"),
        ("output_tokens_cost", "output_cost"),
        ("cache_read_cost", "cache_read_cost"),
        ("cache_creation_cost", "cache_creation_cost"),
        ("total_cost", "total_cost"),
    ):
        value = as_float(cost_data.get(theirs))
        if value is not None:
            cost[ours] = value
    # Billing keys are search_web, fetch_url, search_people, ...; the usage table labels a
    # few of them by the same keys Sonar's costs use.
    details = as_dict(cost_data.get("tool_calls_cost_details"))
    for tool, value in details.items():
        number = as_float(value)
        if number is not None:
            key = "search_queries_cost" if tool == "search_web" else f"{clean_text(str(tool))}_cost"
            cost[key] = number
    if not details and (tools_cost := as_float(cost_data.get("tool_calls_cost"))) is not None:
        cost["tool_calls_cost"] = tools_cost
    return Usage(
        prompt_tokens=as_int(data.get("input_tokens")),
        completion_tokens=as_int(data.get("output_tokens")),
        total_tokens=as_int(data.get("total_tokens")),
        reasoning_tokens=as_int(outputs.get("reasoning_tokens")),
        num_search_queries=as_int(as_dict(tools.get("search_web")).get("invocation")),
        num_page_fetches=as_int(as_dict(tools.get("fetch_url")).get("invocation")),
        cache_read_tokens=as_int(
            inputs.get("cache_read_input_tokens", inputs.get("cached_tokens"))
        ),
        cache_creation_tokens=as_int(inputs.get("cache_creation_input_tokens")),
        cost=cost,
    )


def parse_response(raw: Any) -> Job:
    """A Response object (create answer or poll) as a Job in sonarweb's terms."""
    data = as_dict(raw)
    run_id = as_str(data.get("id")).strip()
    status = _status(data)
    if not run_id or not status:
        raise PayloadError("The answer is not an Agent run: it has no id or no status.")
    error = as_dict(data.get("error"))
    message = as_str(error.get("message")) if status == "FAILED" else ""
    if status == "FAILED" and not message:
        message = "Perplexity reported that the run failed, without saying why."
    details = as_dict(data.get("incomplete_details"))
    completion = _completion(data, status)
    return Job(
        id=run_id,
        status=status,
        model=as_str(data.get("model")),
        # Moves between polls (observed): callers keep the first one they saw.
        created_at=timestamp(data.get("created_at")),
        completed_at=timestamp(data.get("completed_at")),
        error_message=message,
        response=completion if (completion.content or completion.search_results) else None,
        incomplete_reason=as_str(details.get("reason")),
    )


def parse_cancel(raw: Any) -> str:
    """The acknowledgement's status (``cancelling``); PayloadError if it is none."""
    status = as_str(as_dict(raw).get("status")).strip()
    if not status:
        raise PayloadError("The answer is not a cancel acknowledgement.")
    return status
