"""A stand-in for Perplexity's API, as a plain WSGI callable (stdlib only).

The demo and the tests talk to it over real HTTP (see ``server.serve``), so the app's client code
runs exactly as it would against upstream. Nothing here imports Django. It speaks the Agent API
(background research runs; the contract is ``/work/shared/reference/perplexity-agent-api.md``)
and the async Sonar API, which Perplexity retired on 2026-09-27 and which the simulator serves
as retired unless told otherwise (``sonar_retired=False``).

Agent API (every call needs ``Authorization: Bearer <key>``; errors come in the envelope
``{"error": {"message", "type", "code": <int HTTP status>, "param"?}}``; ``/v1/responses`` is
an alias of ``/v1/agent`` throughout):

- ``POST /v1/agent`` (call log endpoint ``"start"``): create a run. The body is validated as
  strictly as upstream (``agent_validation.py``): any unknown field, top-level or nested,
  answers 400 ``invalid request body: json: unknown field "X"`` with ``param`` X; a wrong type or
  value 400 ``invalid_parameter`` with ``param`` the field's path; an empty ``input`` string a
  clear 400, a missing/empty-array/non-string ``input`` 400 ``input array cannot be empty``; no
  ``model``, ``models`` or ``preset``, an unknown preset or model (bare ``sonar`` included),
  an ``anthropic/*`` model without ``max_output_tokens``, ``stream: true`` (the simulator does
  not stream) and an unknown ``previous_response_id`` are 400 too. With ``background: true`` it
  answers the Response object (all 32 keys) with status ``queued``, ``output: []``, ``usage:
  null`` and ``model`` the preset's name; without, the finished run at once. The run's id is
  ``resp_<uuid4>``. ``create_limit_per_minute`` applies (429). ``max_output_tokens`` under 64
  makes the run end ``incomplete`` with empty output (the cap went to reasoning); a larger cap
  shortens the answer to fit. ``store: false`` makes the run unreadable (404) at once. Every
  accepted body is recorded in ``created_bodies``.
- ``GET /v1/agent/{id}`` (``"run"``): the run. 400 ``invalid response id`` for an id that is
  not ``resp_`` + a lowercase UUID; 404 ``resource not found`` for an unknown, expired or other
  key's run.
- ``POST /v1/agent/{id}/cancel`` (``"cancel"``): 200 ``{"response_id", "status":
  "cancelling"}`` for a queued or running run, whose next two GETs then still show
  ``in_progress`` before it is ``cancelled`` for good (error ``{code, message, type:
  "cancelled"}``, ``incomplete_details.reason`` ``cancelled``, ``usage`` null, the partial
  output it had kept). 400 ``the run is already terminal`` for a finished run; 404 / 400 for an
  unknown / malformed id, as for a GET.
- ``GET /v1/models`` (``"models"``): the model list with pricing (``agent.MODEL_PRICES``); it
  needs a key (as observed, unlike the docs).

A run's life comes from the clock at request time: ``queued`` for ``queue_seconds`` after its
creation, ``in_progress`` for ``run_seconds`` more (with partial output: its first
``search_results`` item and the first part of the message), then its outcome: ``completed``
(``model`` resolved: fast/low/medium to ``openai/gpt-6-luna``, high ``openai/gpt-6-sol``, xhigh
``anthropic/claude-opus-5-5``; an explicit model stays itself), ``failed`` (HTTP 200 with
``error``, model still the preset), ``incomplete`` (``incomplete_details.reason``, part of the
text, usage) or ``cancelled``. ``created_at`` moves between polls, as observed live: the
creation time T while queued, T+30 in progress, and once finished T+40 or the real finish time,
whichever is later (``completed_at`` is that too, and null until completed). The answers come
from ``agent.generate_answer``: search results with ids unique across the response (from 1 or
11), a ``fetch_url_results`` item, markdown citing ``[N]`` and ``[web:N]`` plus one marker that
matches no result, and usage with a cost breakdown; generated on first read, cached, and the
same for the same run id. After ``retention_seconds`` a run is gone (404).

Every Agent API response carries ``x-ratelimit-limit``, ``x-ratelimit-remaining``,
``x-ratelimit-reset`` (epoch seconds), ``x-ratelimit-used`` and ``x-request-id`` (a run's id
without ``resp_``, else a fresh UUID). With ``rate_limit_per_minute`` set, a key's calls beyond it
in a sliding minute answer 429 ``request_rate_limit_exceeded`` with remaining 0 and no
``Retry-After``; without, no call is refused and the limit shown is ``UNLIMITED_RATE``.

Async Sonar API (all calls need ``Authorization: Bearer <key>``; otherwise 401 ``{"detail":
...}``). Retired (the default): every path under ``/v1/async/sonar``, ``/chat/completions``,
``/v1/chat/completions``, ``/async/chat/completions`` and ``/v1/async/chat/completions``
answers, once the key is accepted, 403 with ``SONAR_RETIRED_BODY`` (the calls are logged as
``"list"``, ``"get"`` or ``"create"``, or no endpoint for a method or path Sonar never served).
Live (``sonar_retired=False``):

- ``POST /v1/async/sonar``: create a job; 422 HTTPValidationError on a bad body, 429 with
  ``Retry-After`` over ``create_limit_per_minute``; the same ``idempotency_key`` from the same key
  answers the existing job instead of creating another.
- ``GET /v1/async/sonar``: the key's jobs, newest first, ``page_size`` at a time; pass the
  ``next_token`` from one page as the ``next_token`` query parameter to get the next.
- ``GET /v1/async/sonar/{id}``: one job, with ``response`` once COMPLETED; 404 for unknown,
  expired or another key's job.

A job's status comes from the clock at request time: CREATED for ``queue_seconds`` after
``created_at``, IN_PROGRESS for ``run_seconds`` more, then its outcome (COMPLETED or FAILED).
After ``retention_seconds`` the job is gone.

Python API, for tests that hold the ``Simulator`` object:

- ``Simulator(keys=None, *, clock=None, queue_seconds=2, run_seconds=20, page_size=20,
  retention_seconds=7*86400, create_limit_per_minute=None, control=True, image_base=None,
  sonar_retired=True, rate_limit_per_minute=None)``; ``keys=None`` accepts any key matching
  ``KEY_PATTERN``. ``sonar_retired`` and ``rate_limit_per_minute`` are attributes too, and may
  be changed at any time.
- ``add_run(key, *, question=..., preset="medium", model=None, run_id=None, created_at=None,
  created_ago=None, queue_seconds=None, run_seconds=None, outcome="completed",
  error_message=None, incomplete_reason="max_output_tokens", document=None, words=None,
  sources=None) -> str``: an Agent API run as if ``key`` had created it with ``background:
  true`` (an existing ``run_id`` is replaced; ``outcome`` one of completed, failed, incomplete,
  cancelled; ``preset=None`` needs a ``model``). ``document`` is served verbatim once the run
  reaches its outcome. ``run_status(run_id) -> str | None``: the status its next GET shows
  (None: no such run); ``cancel_run(run_id)``: as ``POST .../cancel`` (KeyError if unknown,
  ValueError if already terminal).
- ``created_bodies``: the JSON body of every Agent API create that started a run, in order.
- ``add_job(key, *, question=..., model="sonar-deep-research", job_id=None, created_at=None,
  created_ago=None, queue_seconds=None, run_seconds=None, outcome="COMPLETED",
  error_message=None, completion=None, words=None, sources=None, images=None, related=True)
  -> str``: a Sonar job as if ``key`` had created it (an existing ``job_id`` is replaced).
  ``completion`` replaces the generated answer verbatim. ``job_status(job_id)``.
- ``add_key(key)``, ``revoke_key(key)``: a revoked key gets 401 everywhere.
- ``inject(kind, *, times=1, endpoint=None, job_id=None, retry_after=2, delay=None, size=...,
  declare_length=True, key=None)``: the next ``times`` matching calls (all of them with
  ``times=None``; ``endpoint`` one of ``"get"``, ``"list"``, ``"create"`` for Sonar and
  ``"start"``, ``"run"``, ``"cancel"``, ``"models"`` for the Agent API; ``job_id`` a Sonar job's
  or an Agent run's id) misbehave as ``kind``: ``rate_limit`` (429, ``Retry-After:
  retry_after``), ``server_error`` (500), ``not_found`` (404), ``slow`` (sleep ``delay``
  seconds, default 5, then answer normally), ``drip`` (the normal body a byte every ``delay``
  seconds), ``not_json`` (200 with HTML), ``not_a_job`` (200 with JSON of another shape),
  ``garbage`` (200 with bytes that are no text), ``oversize`` (a ``size``-byte body),
  ``gzip_bomb`` (gzip that inflates to ``size`` bytes), ``unstorable_text`` (NUL and lone
  surrogates in the strings), ``long_model`` (a 320-character model name), ``wrong_charset``
  (UTF-8 labelled ISO-8859-1), and for Sonar only ``list_instead_of_job`` (a job GET answers
  the list document). On the Agent API the errors come in its envelope. ``clear_faults()``
  drops them all.
- ``now()``, ``advance(seconds)``: the simulator's clock is ``clock() + offset``; ``advance``
  moves the offset, so expiry can be tested without waiting.
- ``calls``: a ``CallLog`` of every API call (no control calls), with ``count(endpoint=,
  job_id=, method=, status=)``, ``all()`` and ``len()`` (an Agent call's ``job_id`` is the
  run's id); ``reset_calls()`` empties it and ``created_bodies``. Only the key's last four
  characters are recorded.

Control endpoints (``control=True``; JSON in and out, no auth, so bind to loopback only). They
answer only requests whose ``Host`` is a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``,
any port), so a web page cannot reach them through DNS rebinding, and a POST or DELETE must say
``Content-Type: application/json``, which a browser only sends cross-origin after a CORS
preflight that is never answered (a ``text/plain`` form post is refused with 415):

- ``POST /_sim/runs``: ``{"key": ..., <add_run arguments>}`` -> ``{"id": ...}``
- ``POST /_sim/runs/cancel``: ``{"id": ...}`` (as ``cancel_run``)
- ``GET /_sim/created`` -> ``{"bodies": [...]}`` (``created_bodies``)
- ``POST /_sim/retired``: ``{"retired": true|false}`` -> ``{"retired": ...}``; ``GET`` reads it
- ``POST /_sim/jobs``: ``{"key": ..., <add_job arguments>}`` -> ``{"id": ...}``
- ``POST /_sim/faults``: ``{"kind": ..., <inject arguments>}``; ``DELETE /_sim/faults`` clears
- ``POST /_sim/keys/revoke``, ``POST /_sim/keys/add``: ``{"key": ...}``
- ``POST /_sim/advance``: ``{"seconds": ...}`` -> ``{"offset": ..., "now": ...}``
- ``GET /_sim/calls`` -> ``{"calls": [...]}``; ``POST /_sim/reset_calls``
- ``GET /_sim/health`` -> ``{"ok": true, "now": ...}``

Images (always on, no auth, like a public image host): ``GET /_sim/images/<name>-WxH.png
?title=...`` draws a PNG of that size (``.jpg`` a JPEG, ``.svg`` a static SVG; see ``images.py``
and ``raster.py``). With ``image_base`` set to the simulator's own URL, generated Sonar answers'
``image_url`` point at its PNGs instead of example.org. Agent answers have no images.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from . import agent, faults, images, raster
from .agent_validation import AgentRequest, AgentRequestError, parse_create
from .corpus import generate_completion
from .validation import problem, question_of, validate_create

KEY_PATTERN = re.compile(r"^pplx-[A-Za-z0-9_-]{8,}$")
SONAR_ENDPOINTS = ("get", "list", "create")
AGENT_ENDPOINTS = ("start", "run", "cancel", "models")
ENDPOINTS = SONAR_ENDPOINTS + AGENT_ENDPOINTS
FAULT_KINDS = faults.KINDS
OUTCOMES = ("COMPLETED", "FAILED")
RUN_OUTCOMES = ("completed", "failed", "incomplete", "cancelled")
TERMINAL_RUN_STATUSES = frozenset(RUN_OUTCOMES)
API_ROOT = "/v1/async/sonar"
# Every path of the retired Sonar API: the async jobs and the chat completions they wrapped.
SONAR_ROOTS = (
    API_ROOT,
    "/chat/completions",
    "/v1/chat/completions",
    "/async/chat/completions",
    "/v1/async/chat/completions",
)
AGENT_ROOTS = ("/v1/agent", "/v1/responses")
MODELS_PATH = "/v1/models"
RUN_ID_PATTERN = re.compile(r"^resp_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_BODY_BYTES = 1_000_000

# What every Sonar path answers (after authentication) once the API is retired (contract §12).
SONAR_RETIRED_BODY: dict[str, Any] = {
    "error": {
        "message": "Sonar is now the Agent API. Use /v1/responses instead of /v1/sonar. Migrate "
        "here: https://docs.perplexity.ai/docs/agent-api/migrate-from-sonar/overview",
        "type": "chat_completions_not_available",
        "code": 403,
    }
}
AGENT_NOT_FOUND_BODY: dict[str, Any] = {
    "error": {"message": "resource not found", "type": "not_found", "code": 404}
}
CANCEL_TERMINAL_BODY: dict[str, Any] = {
    "error": {
        "message": "the run is already terminal and cannot be cancelled",
        "type": "invalid_request",
        "code": 400,
    }
}
INVALID_KEY_MESSAGE = "Invalid API key provided. Ensure your API key is correct and active."
DEFAULT_RUN_ERROR_MESSAGE = "The run failed: an internal error occurred."
# GETs of a run that still show in_progress after a cancel was accepted (contract §4).
CANCEL_POLLS = 2
# A max_output_tokens under this goes entirely to reasoning: the run ends incomplete and empty.
SMALL_OUTPUT_CAP = 64
# created_at moves between polls (contract §3.1): queued T, in_progress T+30, finished T+40 or
# the real finish, whichever is later.
IN_PROGRESS_SHIFT = 30
TERMINAL_SHIFT = 40
# The x-ratelimit-limit reported when rate_limit_per_minute is None (no limit enforced).
UNLIMITED_RATE = 100_000

# (words, sources, images) of a generated answer when the caller does not say.
MODEL_DEFAULTS: dict[str, tuple[int, int, int]] = {
    "sonar": (350, 10, 4),
    "sonar-pro": (700, 12, 5),
    "sonar-reasoning-pro": (900, 12, 5),
    "sonar-deep-research": (4000, 36, 8),
}
DEFAULT_QUESTION = "What are the trade-offs of heat pumps versus gas boilers in cold climates?"
DEFAULT_ERROR_MESSAGE = "The request failed due to an internal error. Please try again later."

_NOT_JSON_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid response.</p>"
    b"</body></html>\n"
)


@dataclass(frozen=True)
class Call:
    """One API call as the simulator saw it."""

    method: str
    path: str
    endpoint: str | None
    job_id: str | None
    status: int
    key_last4: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CallLog:
    """Thread-safe record of API calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def append(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def all(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def count(
        self,
        *,
        endpoint: str | None = None,
        job_id: str | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> int:
        return sum(
            1
            for c in self.all()
            if (endpoint is None or c.endpoint == endpoint)
            and (job_id is None or c.job_id == job_id)
            and (method is None or c.method == method.upper())
            and (status is None or c.status == status)
        )

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    def __iter__(self) -> Iterator[Call]:
        return iter(self.all())


@dataclass
class _Job:
    id: str
    key: str
    model: str
    question: str
    created_at: float
    queue_seconds: float
    run_seconds: float
    outcome: str
    error_message: str | None
    completion: Any
    words: int
    sources: int
    images: int
    related: bool
    search_context_size: str
    seq: int
    generated: dict[str, Any] | None = None

    def status(self, now: float) -> str:
        if now < self.created_at + self.queue_seconds:
            return "CREATED"
        if now < self.created_at + self.queue_seconds + self.run_seconds:
            return "IN_PROGRESS"
        return self.outcome

    def summary(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        started = int(self.created_at + self.queue_seconds)
        finished = int(self.created_at + self.queue_seconds + self.run_seconds)
        return {
            "id": self.id,
            "model": self.model,
            "status": status,
            "created_at": int(self.created_at),
            "started_at": started if status != "CREATED" else None,
            "completed_at": finished if status == "COMPLETED" else None,
            "failed_at": finished if status == "FAILED" else None,
        }


@dataclass
class _Run:
    """A background research run of the Agent API."""

    id: str
    key: str
    question: str
    preset: str | None  # canonical preset name
    model: str | None  # an explicit model (or the first of ``models``)
    created_at: float
    queue_seconds: float
    run_seconds: float
    outcome: str
    error_message: str | None
    incomplete_reason: str
    document: Any  # a verbatim Response to serve once terminal
    words: int
    sources: int
    search: bool
    fetch: bool
    seq: int
    background: bool = True
    store: bool = True
    max_output_tokens: int | None = None
    reasoning_only: bool = False  # incomplete with empty output: the cap went to reasoning
    tools_sent: list[dict[str, Any]] | None = None
    echo: dict[str, Any] = field(default_factory=dict)
    # Set once a cancel is accepted: GETs still to show in_progress, and from which phase.
    cancel_polls_left: int | None = None
    cancel_phase: str | None = None
    cancelled_at: float | None = None
    answer: agent.AgentAnswer | None = None

    @property
    def display_model(self) -> str:
        """``model`` until completed: the preset's name, or the model asked for."""
        return self.preset or self.model or "medium"

    @property
    def final_model(self) -> str:
        return agent.resolved_model(self.preset, self.model)

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tools the run uses: those sent, or the preset's."""
        if self.tools_sent is not None:
            return [dict(t) for t in self.tools_sent]
        if self.preset is not None:
            return [{"type": name} for name in agent.PRESET_TOOLS[self.preset]]
        return []

    def phase(self, now: float) -> str:
        """The status from the clock alone (a cancel aside)."""
        if now < self.created_at + self.queue_seconds:
            return "queued"
        if now < self.created_at + self.queue_seconds + self.run_seconds:
            return "in_progress"
        return self.outcome

    def finished_at(self) -> int:
        finish = int(self.created_at + self.queue_seconds + self.run_seconds)
        if not self.background:
            return finish
        return max(int(self.created_at) + TERMINAL_SHIFT, finish)


@dataclass
class _Fault:
    kind: str
    remaining: int | None  # None: every matching call, until cleared
    endpoint: str | None
    job_id: str | None
    retry_after: float | str
    delay: float | None
    size: int = faults.DEFAULT_HOSTILE_SIZE
    declare_length: bool = True
    key: str | None = None  # only calls made with this API key

    def matches(self, endpoint: str, job_id: str | None, key: str) -> bool:
        if self.kind == "list_instead_of_job" and endpoint != "get":
            return False
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        if self.key is not None and self.key != key:
            return False
        return self.job_id is None or self.job_id == job_id


@dataclass
class _Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]]
    # A body sent as it is generated, with the Content-Length to declare (None: none).
    chunks: Iterable[bytes] | None = None
    length: int | None = None


def _json(status: int, data: Any, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    return _Response(status, body, [("Content-Type", "application/json"), *headers])


def _detail(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    return _json(status, {"detail": message}, headers)


def _agent_error(
    status: int,
    message: str,
    kind: str,
    headers: Iterable[tuple[str, str]] = (),
    *,
    param: str | None = None,
) -> _Response:
    """An error in the Agent API's envelope: ``code`` is the HTTP status as an integer."""
    error: dict[str, Any] = {"message": message, "type": kind, "code": status}
    if param is not None:
        error["param"] = param
    return _json(status, {"error": error}, headers)


def _retry_after(fault: _Fault) -> str:
    if isinstance(fault.retry_after, str):
        return fault.retry_after  # sent as given: "inf", "1e20", a date in the past
    return str(max(0, math.ceil(fault.retry_after)))


def _hostile(fault: _Fault, ident: str, status: str) -> _Response | None:
    """The replacing faults that answer the same on both APIs; None for the others."""
    if fault.kind == "not_json":
        return _Response(200, _NOT_JSON_BODY, [("Content-Type", "text/html")])
    if fault.kind == "not_a_job":
        return _json(200, {"hello": 1})
    if fault.kind == "garbage":
        return _Response(200, faults.GARBAGE, [("Content-Type", "application/json")])
    if fault.kind == "oversize":
        chunks = faults.oversize(fault.size, ident, status)
        length = fault.size if fault.declare_length else None
        headers = [("Content-Type", "application/json")]
        return _Response(200, b"", headers, chunks=chunks, length=length)
    if fault.kind == "gzip_bomb":
        headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
        return _Response(200, faults.gzip_bomb(fault.size), headers)
    return None


def _rate_limit_headers(limit: int, remaining: int, reset: int, used: int) -> list[tuple[str, str]]:
    return [
        ("x-ratelimit-limit", str(limit)),
        ("x-ratelimit-remaining", str(remaining)),
        ("x-ratelimit-reset", str(reset)),
        ("x-ratelimit-used", str(used)),
    ]


def _is_under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def _sonar_route(method: str, path: str) -> tuple[str | None, str | None, str]:
    """(endpoint, job id, allowed methods) of a Sonar path; allowed is "" for a path that is
    not served (the chat completions paths are only ever answered by the retirement gate)."""
    for root in SONAR_ROOTS:
        if path == root:
            endpoint = {"GET": "list", "POST": "create"}.get(method)
            return endpoint, None, "GET, POST" if root == API_ROOT else ""
        rest = path[len(root) + 1 :] if path.startswith(root + "/") else ""
        if rest and "/" not in rest:
            endpoint = "get" if method == "GET" else None
            return endpoint, rest, "GET" if root == API_ROOT else ""
    return None, None, ""


def _agent_route(method: str, path: str) -> tuple[str | None, str | None, str]:
    """(endpoint, run id, allowed methods) of an Agent API path; allowed is "" when unknown."""
    if path == MODELS_PATH:
        return ("models" if method == "GET" else None), None, "GET"
    for root in AGENT_ROOTS:
        if path == root:
            return ("start" if method == "POST" else None), None, "POST"
        if not path.startswith(root + "/"):
            continue
        parts = path[len(root) + 1 :].split("/")
        if len(parts) == 1:
            return ("run" if method == "GET" else None), parts[0], "GET"
        if len(parts) == 2 and parts[1] == "cancel":
            return ("cancel" if method == "POST" else None), parts[0], "POST"
    return None, None, ""


class _BadControl(ValueError):
    """A control request the simulator cannot act on (answered with 400)."""


# -- the simulator ------------------------------------------------------------------------------


class Simulator:
    """WSGI app simulating the async Sonar API; see the module docstring for the full API."""

    def __init__(
        self,
        keys: Iterable[str] | None = None,
        *,
        clock: Callable[[], float] | None = None,
        queue_seconds: float = 2,
        run_seconds: float = 20,
        page_size: int = 20,
        retention_seconds: float = 7 * 86400,
        create_limit_per_minute: int | None = None,
        control: bool = True,
        image_base: str | None = None,
        sonar_retired: bool = True,
        rate_limit_per_minute: int | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._keys: set[str] | None = set(keys) if keys is not None else None
        self._revoked: set[str] = set()
        self._clock = clock or time.time
        self._offset = 0.0
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.page_size = max(1, page_size)
        self.retention_seconds = retention_seconds
        self.create_limit_per_minute = create_limit_per_minute
        self.control = control
        # Where answers' images point: this simulator's own URL, or None for example.org.
        self.image_base = image_base
        self._jobs: dict[str, _Job] = {}
        self._idempotency: dict[tuple[str, str], str] = {}
        self._creations: dict[str, deque[float]] = {}
        self._faults: list[_Fault] = []
        self._seq = 0
        self.calls = CallLog()
        # Since 2026-09-27 every Sonar path answers 403; False serves the async Sonar API.
        self.sonar_retired = sonar_retired
        # Agent API calls per key per minute (None: unlimited; the headers are sent anyway).
        self.rate_limit_per_minute = rate_limit_per_minute
        self._runs: dict[str, _Run] = {}
        self._agent_calls: dict[str, deque[float]] = {}
        # The body of every Agent API create that started a run, in order.
        self.created_bodies: list[dict[str, Any]] = []

    # -- clock --------------------------------------------------------------------------------

    def now(self) -> float:
        with self._lock:
            return self._clock() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the simulator's clock forward; returns the new offset."""
        with self._lock:
            self._offset += seconds
            return self._offset

    # -- keys ---------------------------------------------------------------------------------

    def add_key(self, key: str) -> None:
        with self._lock:
            self._revoked.discard(key)
            if self._keys is not None:
                self._keys.add(key)

    def revoke_key(self, key: str) -> None:
        with self._lock:
            self._revoked.add(key)
            if self._keys is not None:
                self._keys.discard(key)

    def key_accepted(self, key: str) -> bool:
        with self._lock:
            if key in self._revoked:
                return False
            if self._keys is None:
                return bool(KEY_PATTERN.match(key))
            return key in self._keys

    # -- jobs ---------------------------------------------------------------------------------

    def add_job(
        self,
        key: str,
        *,
        question: str = DEFAULT_QUESTION,
        model: str = "sonar-deep-research",
        job_id: str | None = None,
        created_at: float | None = None,
        created_ago: float | None = None,
        queue_seconds: float | None = None,
        run_seconds: float | None = None,
        outcome: str = "COMPLETED",
        error_message: str | None = None,
        completion: Any = None,
        words: int | None = None,
        sources: int | None = None,
        images: int | None = None,
        related: bool = True,
        search_context_size: str = "low",
    ) -> str:
        """Add (or replace, by ``job_id``) a job owned by ``key``; returns its id."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        default_words, default_sources, default_images = MODEL_DEFAULTS.get(
            model, MODEL_DEFAULTS["sonar-pro"]
        )
        with self._lock:
            now = self.now()
            if created_at is None:
                created_at = now - (created_ago or 0.0)
            self._seq += 1
            job = _Job(
                id=job_id or str(uuid.uuid4()),
                key=key,
                model=model,
                question=question,
                created_at=float(created_at),
                queue_seconds=self.queue_seconds if queue_seconds is None else queue_seconds,
                run_seconds=self.run_seconds if run_seconds is None else run_seconds,
                outcome=outcome,
                error_message=(error_message or DEFAULT_ERROR_MESSAGE)
                if outcome == "FAILED"
                else None,
                completion=completion,
                words=default_words if words is None else words,
                sources=default_sources if sources is None else sources,
                images=default_images if images is None else images,
                related=related,
                search_context_size=search_context_size,
                seq=self._seq,
            )
            self._jobs[job.id] = job
            return job.id

    def job_status(self, job_id: str) -> str | None:
        """The job's status now, or None when it does not exist (any more)."""
        with self._lock:
            now = self.now()
            job = self._jobs.get(job_id)
            return job.status(now) if job and self._alive(job, now) else None

    def _alive(self, job: _Job, now: float) -> bool:
        return now < job.created_at + self.retention_seconds

    def _purge(self, now: float) -> None:
        expired = [job_id for job_id, job in self._jobs.items() if not self._alive(job, now)]
        for job_id in expired:
            del self._jobs[job_id]
        if expired:
            self._idempotency = {k: v for k, v in self._idempotency.items() if v in self._jobs}
        retention = self.retention_seconds
        gone = [i for i, run in self._runs.items() if now >= run.created_at + retention]
        for run_id in gone:
            del self._runs[run_id]

    def _completion(self, job: _Job) -> Any:
        if job.completion is not None:
            return job.completion
        if job.generated is None:
            # Generated lazily and cached: 40k-word answers should cost nothing until read.
            # Two threads racing here produce identical documents, so no lock is needed.
            job.generated = generate_completion(
                job.question,
                model=job.model,
                words=job.words,
                sources=job.sources,
                images=job.images,
                related=job.related,
                seed=job.id,
                job_id=job.id,
                created=int(job.created_at + job.queue_seconds + job.run_seconds),
                search_context_size=job.search_context_size,
                image_base=self.image_base,
            )
        return job.generated

    # -- Agent API runs -----------------------------------------------------------------------

    def add_run(
        self,
        key: str,
        *,
        question: str = DEFAULT_QUESTION,
        preset: str | None = "medium",
        model: str | None = None,
        run_id: str | None = None,
        created_at: float | None = None,
        created_ago: float | None = None,
        queue_seconds: float | None = None,
        run_seconds: float | None = None,
        outcome: str = "completed",
        error_message: str | None = None,
        incomplete_reason: str = "max_output_tokens",
        document: Any = None,
        words: int | None = None,
        sources: int | None = None,
    ) -> str:
        """Add (or replace, by ``run_id``) a background run owned by ``key``; returns its id.

        ``document`` is served verbatim once the run reaches its outcome (instead of the
        generated Response); ``words`` and ``sources`` size the generated answer."""
        if outcome not in RUN_OUTCOMES:
            raise ValueError(f"outcome must be one of {RUN_OUTCOMES}, not {outcome!r}")
        canonical = agent.canonical_preset(preset) if preset is not None else None
        if preset is not None and canonical is None:
            raise ValueError(f"preset must be one of {agent.PRESETS}, not {preset!r}")
        if canonical is None and not model:
            raise ValueError("a run needs a preset or a model")
        if run_id is not None and not RUN_ID_PATTERN.match(run_id):
            raise ValueError(f"run_id must be resp_ followed by a lowercase UUID, not {run_id!r}")
        default_words, default_sources = (
            agent.PRESET_DEFAULTS[canonical] if canonical else agent.MODEL_ONLY_DEFAULTS
        )
        tools = agent.PRESET_TOOLS[canonical] if canonical else ("web_search",)
        with self._lock:
            now = self.now()
            if created_at is None:
                created_at = now - (created_ago or 0.0)
            self._seq += 1
            run = _Run(
                id=run_id or f"resp_{uuid.uuid4()}",
                key=key,
                question=question,
                preset=canonical,
                model=model,
                created_at=float(created_at),
                queue_seconds=self.queue_seconds if queue_seconds is None else queue_seconds,
                run_seconds=self.run_seconds if run_seconds is None else run_seconds,
                outcome=outcome,
                error_message=(error_message or DEFAULT_RUN_ERROR_MESSAGE)
                if outcome == "failed"
                else None,
                incomplete_reason=incomplete_reason,
                document=document,
                words=default_words if words is None else words,
                sources=default_sources if sources is None else sources,
                search="web_search" in tools,
                fetch="fetch_url" in tools,
                seq=self._seq,
            )
            self._runs[run.id] = run
            return run.id

    def run_status(self, run_id: str) -> str | None:
        """The status the run's next GET shows, or None when it does not exist (any more).
        Unlike a GET, asking does not count towards a cancelled run's last in_progress polls."""
        with self._lock:
            now = self.now()
            self._purge(now)
            run = self._runs.get(run_id)
            return self._poll_status(run, now, consume=False) if run is not None else None

    def cancel_run(self, run_id: str) -> None:
        """Cancel the run as ``POST /v1/agent/{id}/cancel`` does: its next two GETs show
        ``in_progress``, then it is ``cancelled``. KeyError if unknown, ValueError if the run
        is already terminal."""
        with self._lock:
            now = self.now()
            self._purge(now)
            run = self._runs.get(run_id)
            if run is None:
                raise KeyError(run_id)
            status = self._poll_status(run, now, consume=False)
            if status in TERMINAL_RUN_STATUSES:
                raise ValueError(f"run {run_id} is already {status}")
            self._begin_cancel(run, now, status)

    def _poll_status(self, run: _Run, now: float, *, consume: bool) -> str:
        if run.cancel_polls_left is None:
            return run.phase(now)
        if run.cancel_polls_left > 0:
            if consume:
                run.cancel_polls_left -= 1
            return "in_progress"
        return "cancelled"

    @staticmethod
    def _begin_cancel(run: _Run, now: float, status: str) -> None:
        if run.cancel_polls_left is None:
            run.cancel_polls_left = CANCEL_POLLS
            run.cancel_phase = status
            run.cancelled_at = now

    def _answer(self, run: _Run) -> agent.AgentAnswer:
        if run.answer is None:
            # Generated lazily and cached, like Sonar answers; two threads racing here build
            # identical answers, so no lock is needed.
            run.answer = agent.generate_answer(
                run.question,
                seed=run.id,
                model=run.final_model,
                words=run.words,
                sources=run.sources,
                search=run.search,
                fetch=run.fetch,
                created=run.finished_at(),
            )
        return run.answer

    def _partial(self, run: _Run) -> list[dict[str, Any]]:
        if run.document is not None:
            return []
        return self._answer(run).partial_output()

    def _run_document(self, run: _Run, status: str) -> Any:
        """The Response a GET of ``run`` answers while it is in ``status``."""
        start = int(run.created_at)
        finished = run.finished_at()
        output: list[dict[str, Any]]
        common: dict[str, Any] = {
            "background": run.background,
            "store": run.store,
            "echo": run.echo,
            "tools": run.tools,
        }
        if status == "queued":
            # The submit echo shows only the tools sent; the preset's appear once it runs.
            common["tools"] = [dict(t) for t in run.tools_sent or []]
            return agent.response_document(
                run.id, status="queued", model=run.display_model, created_at=start, **common
            )
        if status == "in_progress":
            output = [] if run.cancel_phase == "queued" else self._partial(run)
            return agent.response_document(
                run.id,
                status="in_progress",
                model=run.display_model,
                created_at=start + IN_PROGRESS_SHIFT,
                output=output,
                **common,
            )
        if status == "cancelled":
            if run.cancelled_at is not None:
                output = [] if run.cancel_phase == "queued" else self._partial(run)
                stamp = max(start + TERMINAL_SHIFT, int(run.cancelled_at))
            elif run.document is not None:
                return run.document
            else:
                output, stamp = self._partial(run), finished
            return agent.response_document(
                run.id,
                status="cancelled",
                model=run.display_model,
                created_at=stamp,
                error={"code": "cancelled", "message": "cancelled", "type": "cancelled"},
                incomplete_details={"reason": "cancelled"},
                output=output,
                **common,
            )
        if run.document is not None:
            return run.document
        if status == "failed":
            return agent.response_document(
                run.id,
                status="failed",
                model=run.display_model,
                created_at=finished,
                error={
                    "message": run.error_message or DEFAULT_RUN_ERROR_MESSAGE,
                    "code": "server_error",
                    "type": "internal_error",
                },
                **common,
            )
        if status == "incomplete":
            if run.reasoning_only:
                output = []
                usage = agent.reasoning_only_usage(
                    run.question, run.final_model, run.max_output_tokens or 16
                )
            else:
                answer = self._answer(run)
                output, usage = answer.truncated_output(), answer.usage(truncated=True)
            return agent.response_document(
                run.id,
                status="incomplete",
                model=run.final_model,
                created_at=finished,
                completed_at=finished,
                incomplete_details={"reason": run.incomplete_reason},
                output=output,
                usage=usage,
                **common,
            )
        answer = self._answer(run)
        return agent.response_document(
            run.id,
            status="completed",
            model=run.final_model,
            created_at=finished,
            completed_at=finished,
            output=answer.output(),
            usage=answer.usage(),
            **common,
        )

    def _create_run(self, key: str, request: AgentRequest, now: float) -> str:
        """A run for a validated create; the caller holds the lock."""
        default_words, default_sources = (
            agent.PRESET_DEFAULTS[request.preset] if request.preset else agent.MODEL_ONLY_DEFAULTS
        )
        words, outcome, reasoning_only = default_words, "completed", False
        cap = request.max_output_tokens
        if cap is not None and cap < SMALL_OUTPUT_CAP:
            outcome, reasoning_only = "incomplete", True
        elif cap is not None:
            # An answer that fits in the cap the request set.
            words = min(words, max(40, int(cap * 0.6)))
        self._seq += 1
        run = _Run(
            id=f"resp_{uuid.uuid4()}",
            key=key,
            question=request.question,
            preset=request.preset,
            model=request.model,
            created_at=now,
            queue_seconds=self.queue_seconds if request.background else 0,
            run_seconds=self.run_seconds if request.background else 0,
            outcome=outcome,
            error_message=None,
            incomplete_reason="max_output_tokens",
            document=None,
            words=words,
            sources=default_sources,
            search=request.search,
            fetch=request.fetch,
            seq=self._seq,
            background=request.background,
            store=request.store,
            max_output_tokens=cap,
            reasoning_only=reasoning_only,
            tools_sent=request.tools,
            echo=request.echo,
        )
        self._runs[run.id] = run
        return run.id

    # -- faults -------------------------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        times: int | None = 1,
        endpoint: str | None = None,
        job_id: str | None = None,
        retry_after: float | str = 2,
        delay: float | None = None,
        size: int = faults.DEFAULT_HOSTILE_SIZE,
        declare_length: bool = True,
        key: str | None = None,
    ) -> None:
        """Make the next ``times`` matching API calls (all of them with ``times=None``)
        misbehave as ``kind``; see the module docstring."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, not {kind!r}")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS} or None, not {endpoint!r}")
        if kind == "list_instead_of_job" and endpoint not in (None, "get"):
            raise ValueError("list_instead_of_job is a Sonar fault: endpoint must be 'get'")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every call")
        if delay is None:
            delay = {"slow": 5.0, "drip": 1.0}.get(kind)
        if size < 0:
            raise ValueError("size must not be negative")
        fault = _Fault(kind, times, endpoint, job_id, retry_after, delay, size, declare_length, key)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, endpoint: str, job_id: str | None, key: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(endpoint, job_id, key):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def reset_calls(self) -> None:
        """Forget the calls made so far, and the create bodies recorded."""
        self.calls.reset()
        with self._lock:
            self.created_bodies.clear()

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO") or "/")
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            # PEP 3333 servers hand over the raw bytes decoded as latin-1.
            path = path.encode("latin-1").decode("utf-8")
        if path != "/":
            path = path.rstrip("/")
        if path.startswith(images.PREFIX):
            # Like a public image host: no key, and served even with the control endpoints off.
            response = self._image(method, path, environ)
        elif path == "/_sim" or path.startswith("/_sim/"):
            if self.control:
                response = self._control(method, path, environ)
            else:
                response = _detail(404, "Not Found")
        else:
            response = self._api(method, path, environ)
        length = len(response.body) if response.chunks is None else response.length
        headers = list(response.headers)
        if length is not None:
            headers.append(("Content-Length", str(length)))
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        if method == "HEAD":
            return []
        return [response.body] if response.chunks is None else response.chunks

    @staticmethod
    def _image(method: str, path: str, environ: dict[str, Any]) -> _Response:
        name, _, extension = path[len(images.PREFIX) :].rpartition(".")
        mime = {"svg": "image/svg+xml", **{k: v[1] for k, v in raster.FORMATS.items()}}
        if extension not in mime or not images.NAME.match(name):
            return _detail(404, "Not Found")
        if method not in {"GET", "HEAD"}:
            return _detail(405, "Method Not Allowed", [("Allow", "GET, HEAD")])
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        title = (query.get("title") or [""])[0]
        headers = [
            ("Content-Type", mime[extension]),
            ("Cache-Control", "public, max-age=86400"),
            ("X-Content-Type-Options", "nosniff"),
            # Opened on its own, the picture still may not run or load anything.
            ("Content-Security-Policy", "default-src 'none'"),
        ]
        if extension == "svg":
            body = images.render_svg(name, title)
        else:
            body = raster.render_raster(name, title, extension)
        return _Response(200, body, headers)

    def _api(self, method: str, path: str, environ: dict[str, Any]) -> _Response:
        if path == MODELS_PATH or _is_under(path, AGENT_ROOTS):
            return self._agent_api(method, path, environ)
        return self._sonar_api(method, path, environ)

    # -- the async Sonar API ----------------------------------------------------------------

    def _sonar_api(self, method: str, path: str, environ: dict[str, Any]) -> _Response:
        key = _bearer(environ)
        endpoint, job_id, allowed = _sonar_route(method, path)
        body = _read_body(environ) if method in {"POST", "PUT", "PATCH"} else b""
        retired = self.sonar_retired and _is_under(path, SONAR_ROOTS)
        if not retired and not allowed:
            endpoint = job_id = None
            response = _detail(404, "Not Found")
        elif not retired and endpoint is None:
            response = _detail(405, "Method Not Allowed", [("Allow", allowed)])
        elif not key:
            response = _detail(401, "Not authenticated: send Authorization: Bearer <api key>")
        elif not self.key_accepted(key):
            response = _detail(401, "Invalid API key, or the key has been revoked")
        elif endpoint is None:
            response = _json(403, SONAR_RETIRED_BODY)
        else:
            response, created_id = self._dispatch(endpoint, key, job_id, body, environ)
            job_id = job_id or created_id
        self.calls.append(
            Call(method, path, endpoint, job_id, response.status, key[-4:], self.now())
        )
        return response

    def _dispatch(
        self, endpoint: str, key: str, job_id: str | None, body: bytes, environ: dict[str, Any]
    ) -> tuple[_Response, str | None]:
        fault = self._take_fault(endpoint, job_id, key)
        if fault is not None and fault.kind in faults.REPLACING:
            return self._replacing_fault(fault, key, job_id), None
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay or 0)
        if self.sonar_retired:
            response, created = _json(403, SONAR_RETIRED_BODY), None
        elif endpoint == "list":
            query = parse_qs(str(environ.get("QUERY_STRING", "")))
            response, created = self._list(key, (query.get("next_token") or [None])[0]), None
        elif endpoint == "get":
            assert job_id is not None
            response, created = self._get(key, job_id), None
        else:
            response, created = self._create(key, body)
        if fault is not None and response.status == 200:
            response = self._altered(fault, response)
        return response, created

    def _replacing_fault(self, fault: _Fault, key: str, job_id: str | None) -> _Response:
        """An answer that takes the place of the normal one."""
        if fault.kind == "rate_limit":
            return _detail(429, "Rate limit exceeded", [("Retry-After", _retry_after(fault))])
        if fault.kind == "server_error":
            return _detail(500, "Internal Server Error")
        if fault.kind == "not_found":
            return _detail(404, "Not Found")
        hostile = _hostile(fault, job_id or "list", "COMPLETED")
        if hostile is not None:
            return hostile
        if self.sonar_retired:
            return _json(403, SONAR_RETIRED_BODY)
        return self._list(key, None)  # list_instead_of_job

    # -- the Agent API ------------------------------------------------------------------------

    def _agent_api(self, method: str, path: str, environ: dict[str, Any]) -> _Response:
        key = _bearer(environ)
        endpoint, run_id, allowed = _agent_route(method, path)
        body = _read_body(environ) if method in {"POST", "PUT", "PATCH"} else b""
        if not allowed:
            endpoint = run_id = None
            response = _json(404, AGENT_NOT_FOUND_BODY)
        elif endpoint is None:
            response = _agent_error(
                405, f"method {method} is not allowed here", "method_not_allowed",
                [("Allow", allowed)],
            )  # fmt: skip
        elif not key or not self.key_accepted(key):
            response = _agent_error(401, INVALID_KEY_MESSAGE, "invalid_api_key")
        else:
            limited = self._count_agent_call(key)
            if limited is not None:
                response = limited
            else:
                response, created_id = self._agent_dispatch(endpoint, key, run_id, body)
                run_id = run_id or created_id
        names = {name.lower() for name, _ in response.headers}
        if "x-ratelimit-limit" not in names:
            response.headers = [*response.headers, *self._rate_headers(key)]
        known = run_id if run_id and RUN_ID_PATTERN.match(run_id) else None
        request_id = known.removeprefix("resp_") if known else str(uuid.uuid4())
        response.headers = [*response.headers, ("x-request-id", request_id)]
        self.calls.append(
            Call(method, path, endpoint, run_id, response.status, key[-4:], self.now())
        )
        return response

    def _agent_window(self, key: str, now: float, *, create: bool) -> deque[float]:
        """The key's Agent API calls of the last minute (a throwaway one for an unknown key,
        so 401s for made-up keys leave nothing behind)."""
        if create:
            window = self._agent_calls.setdefault(key, deque())
        else:
            window = self._agent_calls.get(key) or deque()
        while window and window[0] <= now - 60:
            window.popleft()
        return window

    def _count_agent_call(self, key: str) -> _Response | None:
        """Count one call against the key's per-minute limit; the 429 when it is spent."""
        with self._lock:
            now = self.now()
            window = self._agent_window(key, now, create=True)
            limit = self.rate_limit_per_minute
            if limit is None or len(window) < limit:
                window.append(now)
                return None
            reset = math.ceil(window[0] + 60)
            headers = _rate_limit_headers(limit, 0, reset, len(window))
        message = (
            f"Rate limit exceeded: at most {limit} requests per minute for this key; "
            f"retry after {reset} (x-ratelimit-reset)"
        )
        return _agent_error(429, message, "request_rate_limit_exceeded", headers)

    def _rate_headers(self, key: str) -> list[tuple[str, str]]:
        with self._lock:
            now = self.now()
            window = self._agent_window(key, now, create=False)
            limit = self.rate_limit_per_minute
            shown = UNLIMITED_RATE if limit is None else limit
            reset = math.ceil((window[0] if window else now) + 60)
            return _rate_limit_headers(shown, max(0, shown - len(window)), reset, len(window))

    def _agent_dispatch(
        self, endpoint: str, key: str, run_id: str | None, body: bytes
    ) -> tuple[_Response, str | None]:
        fault = self._take_fault(endpoint, run_id, key)
        if fault is not None and fault.kind in faults.REPLACING:
            return self._agent_replacing_fault(fault, run_id or endpoint), None
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay or 0)
        created: str | None = None
        if endpoint == "start":
            response, created = self._start(key, body)
        elif endpoint == "run":
            assert run_id is not None
            response = self._get_run(key, run_id)
        elif endpoint == "cancel":
            assert run_id is not None
            response = self._cancel(key, run_id)
        else:
            response = _json(200, agent.models_document())
        if fault is not None and response.status == 200:
            response = self._altered(fault, response)
        return response, created

    @staticmethod
    def _agent_replacing_fault(fault: _Fault, ident: str) -> _Response:
        if fault.kind == "rate_limit":
            return _agent_error(
                429, "Rate limit exceeded", "request_rate_limit_exceeded",
                [("Retry-After", _retry_after(fault))],
            )  # fmt: skip
        if fault.kind == "server_error":
            return _agent_error(500, "internal server error", "internal_error")
        if fault.kind == "not_found":
            return _json(404, AGENT_NOT_FOUND_BODY)
        hostile = _hostile(fault, ident, "completed")
        assert hostile is not None, fault.kind  # list_instead_of_job never matches here
        return hostile

    def _start(self, key: str, body: bytes) -> tuple[_Response, str | None]:
        try:
            request = parse_create(body)
        except AgentRequestError as exc:
            return _json(400, exc.body()), None
        with self._lock:
            now = self.now()
            self._purge(now)
            previous = request.previous_response_id
            if previous is not None:
                before = self._runs.get(previous)
                if before is None or before.key != key or not before.store:
                    message = "invalid request"
                    return _agent_error(400, message, "invalid_request",
                                        param="previous_response_id"), None  # fmt: skip
            oldest = self._take_creation_slot(key, now)
            if oldest is not None:
                limit = self.create_limit_per_minute or 0
                reset = math.ceil(oldest + 60)
                message = f"Rate limit exceeded: at most {limit} runs per minute for this key"
                headers = _rate_limit_headers(limit, 0, reset, limit)
                return _agent_error(429, message, "request_rate_limit_exceeded", headers), None
            run_id = self._create_run(key, request, now)
            self.created_bodies.append(request.body)
            run = self._runs[run_id]
        # Upstream answers a background create with queued whatever the queue looks like.
        status = "queued" if run.background else run.outcome
        return _json(200, self._run_document(run, status)), run_id

    def _get_run(self, key: str, run_id: str) -> _Response:
        if not RUN_ID_PATTERN.match(run_id):
            return _agent_error(400, "invalid response id", "invalid_request")
        with self._lock:
            now = self.now()
            self._purge(now)
            run = self._runs.get(run_id)
            if run is None or run.key != key or not run.store:
                return _json(404, AGENT_NOT_FOUND_BODY)
            status = self._poll_status(run, now, consume=True)
        return _json(200, self._run_document(run, status))

    def _cancel(self, key: str, run_id: str) -> _Response:
        if not RUN_ID_PATTERN.match(run_id):
            return _agent_error(400, "invalid response id", "invalid_request")
        with self._lock:
            now = self.now()
            self._purge(now)
            run = self._runs.get(run_id)
            if run is None or run.key != key or not run.store:
                return _json(404, AGENT_NOT_FOUND_BODY)
            status = self._poll_status(run, now, consume=False)
            if status in TERMINAL_RUN_STATUSES:
                return _json(400, CANCEL_TERMINAL_BODY)
            self._begin_cancel(run, now, status)
        return _json(200, {"response_id": run.id, "status": "cancelling"})

    @staticmethod
    def _altered(fault: _Fault, response: _Response) -> _Response:
        """The normal answer, changed on its way out."""
        if fault.kind == "drip":
            chunks = faults.drip(response.body, fault.delay or 1.0)
            return _Response(
                response.status, b"", response.headers, chunks=chunks, length=len(response.body)
            )
        if fault.kind in ("unstorable_text", "long_model", "wrong_charset"):
            body = faults.alter_body(fault.kind, response.body)
            headers = response.headers
            if fault.kind == "wrong_charset":
                headers = [("Content-Type", "application/json; charset=iso-8859-1")]
            return _Response(response.status, body, headers)
        return response

    def _get(self, key: str, job_id: str) -> _Response:
        with self._lock:
            now = self.now()
            self._purge(now)
            job = self._jobs.get(job_id)
            if job is None or job.key != key:
                return _detail(404, "Request not found")
            document = self._document(job, now)
        if document["status"] == "COMPLETED":
            document["response"] = self._completion(job)
        return _json(200, document)

    def _list(self, key: str, token: str | None) -> _Response:
        cursor: tuple[float, int] | None = None
        if token:
            cursor = _decode_token(token)
            if cursor is None:
                detail = problem(["query", "next_token"], "Invalid pagination token",
                               "value_error", token)  # fmt: skip
                return _json(422, {"detail": [detail]})
        with self._lock:
            now = self.now()
            self._purge(now)
            jobs = sorted(
                (j for j in self._jobs.values() if j.key == key),
                key=lambda j: (j.created_at, j.seq),
                reverse=True,
            )
            if cursor is not None:
                jobs = [j for j in jobs if (j.created_at, j.seq) < cursor]
            page = jobs[: self.page_size]
            more = len(jobs) > self.page_size
            requests = [j.summary(now) for j in page]
        next_token = _encode_token(page[-1].created_at, page[-1].seq) if more else None
        return _json(200, {"requests": requests, "next_token": next_token})

    def _create(self, key: str, body: bytes) -> tuple[_Response, str | None]:
        try:
            data = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            detail = problem(["body", 0], "JSON decode error", "json_invalid", {}, error=str(exc))
            return _json(422, {"detail": [detail]}), None
        errors = validate_create(data)
        if errors:
            return _json(422, {"detail": errors}), None
        request = data["request"]
        idempotency_key = data.get("idempotency_key")
        with self._lock:
            now = self.now()
            self._purge(now)
            if idempotency_key:
                existing = self._jobs.get(self._idempotency.get((key, idempotency_key), ""))
                if existing is not None:
                    # A retry of a create that already succeeded is answered, not rate limited:
                    # that is the point of sending an idempotency key.
                    return _json(200, self._document(existing, now)), existing.id
            limited = self._rate_limited(key, now)
            if limited is not None:
                return limited, None
            job_id = self._create_job(key, request, now)
            if idempotency_key:
                self._idempotency[(key, idempotency_key)] = job_id
            # Upstream answers a create with CREATED whatever the queue looks like.
            document = self._document(self._jobs[job_id], now) | {
                "status": "CREATED",
                "started_at": None,
                "completed_at": None,
                "failed_at": None,
                "error_message": None,
            }
        return _json(200, document), job_id

    @staticmethod
    def _document(job: _Job, now: float) -> dict[str, Any]:
        """The full job document, with ``response`` left null for the caller to fill."""
        document = job.summary(now)
        document["error_message"] = job.error_message if document["status"] == "FAILED" else None
        document["response"] = None
        return document

    def _take_creation_slot(self, key: str, now: float) -> float | None:
        """Count one creation (a Sonar job or an Agent run) against ``create_limit_per_minute``;
        None when allowed, else the time of the oldest creation still in the window."""
        limit = self.create_limit_per_minute
        if limit is None:
            return None
        window = self._creations.setdefault(key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) < limit:
            window.append(now)
            return None
        return window[0]

    def _rate_limited(self, key: str, now: float) -> _Response | None:
        oldest = self._take_creation_slot(key, now)
        if oldest is None:
            return None
        limit = self.create_limit_per_minute
        retry = max(1, math.ceil(oldest + 60 - now))
        message = f"Rate limit exceeded: at most {limit} requests per minute for this endpoint"
        return _detail(429, message, [("Retry-After", str(retry))])

    def _create_job(self, key: str, request: dict[str, Any], now: float) -> str:
        options = request.get("web_search_options") or {}
        no_search = request.get("disable_search") is True
        return self.add_job(
            key,
            question=question_of(request["messages"]) or DEFAULT_QUESTION,
            model=request["model"],
            created_at=now,
            sources=0 if no_search else None,
            images=0 if no_search or request.get("return_images") is False else None,
            related=request.get("return_related_questions") is not False,
            search_context_size=str(options.get("search_context_size") or "low"),
        )

    # -- control ------------------------------------------------------------------------------

    def _set_retired(self, body: dict[str, Any]) -> bool:
        retired = body.get("retired")
        if not isinstance(retired, bool):
            raise _BadControl('send {"retired": true} or {"retired": false}')
        self.sonar_retired = retired
        return retired

    def _created(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.created_bodies)

    def _control(self, method: str, path: str, environ: dict[str, Any]) -> _Response:
        if not _loopback_host(environ):
            return _detail(403, "Control endpoints answer only on a loopback Host.")
        routes: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
            "/_sim/jobs": {"POST": lambda b: {"id": self.add_job(**b)}},
            "/_sim/runs": {"POST": lambda b: {"id": self.add_run(**b)}},
            "/_sim/runs/cancel": {"POST": lambda b: self.cancel_run(b["id"]) or {"ok": True}},
            "/_sim/retired": {
                "GET": lambda b: {"retired": self.sonar_retired},
                "POST": lambda b: {"retired": self._set_retired(b)},
            },
            "/_sim/created": {"GET": lambda b: {"bodies": self._created()}},
            "/_sim/faults": {
                "POST": lambda b: self.inject(**b) or {"ok": True},
                "DELETE": lambda b: self.clear_faults() or {"ok": True},
            },
            "/_sim/keys/revoke": {"POST": lambda b: self.revoke_key(b["key"]) or {"ok": True}},
            "/_sim/keys/add": {"POST": lambda b: self.add_key(b["key"]) or {"ok": True}},
            "/_sim/advance": {
                "POST": lambda b: {"offset": self.advance(float(b["seconds"])), "now": self.now()}
            },
            "/_sim/calls": {"GET": lambda b: {"calls": [c.as_dict() for c in self.calls]}},
            "/_sim/reset_calls": {"POST": lambda b: self.reset_calls() or {"ok": True}},
            "/_sim/health": {"GET": lambda b: {"ok": True, "now": self.now()}},
        }
        handlers = routes.get(path)
        if handlers is None:
            return _detail(404, "Not Found")
        handler = handlers.get(method)
        if handler is None:
            return _detail(405, "Method Not Allowed", [("Allow", ", ".join(handlers))])
        if method in {"POST", "DELETE"} and not _is_json(environ):
            return _detail(415, "Control requests must be sent as Content-Type: application/json.")
        try:
            raw = _read_body(environ) if method in {"POST", "DELETE"} else b""
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise _BadControl("the body must be a JSON object")
            return _json(200, handler(body))
        except (ValueError, TypeError, KeyError) as exc:
            return _detail(400, f"Bad control request: {exc}")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def _loopback_host(environ: dict[str, Any]) -> bool:
    """Whether the Host header names this machine's loopback interface, with any port."""
    host = str(environ.get("HTTP_HOST", "")).strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port = rest.removeprefix(":") if rest.startswith(":") else rest
    else:
        name, _, port = host.partition(":")
    return name in LOOPBACK_HOSTS and (port == "" or port.isdigit())


def _is_json(environ: dict[str, Any]) -> bool:
    media_type = str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0]
    return media_type.strip().lower() == "application/json"


def _bearer(environ: dict[str, Any]) -> str:
    header = str(environ.get("HTTP_AUTHORIZATION", "")).strip()
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    # Reading more than Content-Length would block on a keep-alive socket.
    return environ["wsgi.input"].read(min(length, MAX_BODY_BYTES))


def _encode_token(created_at: float, seq: int) -> str:
    # A cursor rather than an offset, so new jobs arriving between pages shift nothing.
    raw = json.dumps([created_at, seq]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[float, int] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, seq = json.loads(raw)
        return float(created_at), int(seq)
    except (ValueError, TypeError, binascii.Error):
        return None
