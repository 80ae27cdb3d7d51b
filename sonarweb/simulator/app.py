"""A stand-in for Perplexity's async Sonar API, as a plain WSGI callable (stdlib only).

The demo and the tests talk to it over real HTTP (see ``server.serve``), so the app's client code
runs exactly as it would against upstream. Nothing here imports Django.

API (all calls need ``Authorization: Bearer <key>``; otherwise 401 ``{"detail": ...}``):

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
  retention_seconds=7*86400, create_limit_per_minute=None, control=True, image_base=None)``;
  ``keys=None`` accepts any key matching ``KEY_PATTERN``.
- ``add_job(key, *, question=..., model="sonar-deep-research", job_id=None, created_at=None,
  created_ago=None, queue_seconds=None, run_seconds=None, outcome="COMPLETED",
  error_message=None, completion=None, words=None, sources=None, images=None, related=True)
  -> str``: a job as if ``key`` had created it (an existing ``job_id`` is replaced).
  ``completion`` replaces the generated answer verbatim.
- ``add_key(key)``, ``revoke_key(key)``: a revoked key gets 401 everywhere.
- ``inject(kind, *, times=1, endpoint=None, job_id=None, retry_after=2, delay=None)``: the next
  ``times`` matching calls (``endpoint`` one of ``"get"``, ``"list"``, ``"create"``; ``job_id``
  for ``"get"``) misbehave as ``kind``: ``rate_limit`` (429, ``Retry-After: retry_after``),
  ``server_error`` (500), ``slow`` (sleep ``delay`` seconds, default 5, then answer normally),
  ``not_json`` (200 with HTML), ``list_instead_of_job`` (a job GET answers the list document),
  ``not_found`` (404). ``delay`` only matters for ``slow``. ``clear_faults()`` drops them all.
- ``now()``, ``advance(seconds)``: the simulator's clock is ``clock() + offset``; ``advance``
  moves the offset, so expiry can be tested without waiting.
- ``calls``: a ``CallLog`` of every API call (no control calls), with ``count(endpoint=,
  job_id=, method=, status=)``, ``all()`` and ``len()``; ``reset_calls()`` empties it. Only the
  key's last four characters are recorded.

Control endpoints (``control=True``; JSON in and out, no auth, so bind to loopback only). They
answer only requests whose ``Host`` is a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``,
any port), so a web page cannot reach them through DNS rebinding, and a POST or DELETE must say
``Content-Type: application/json``, which a browser only sends cross-origin after a CORS
preflight that is never answered (a ``text/plain`` form post is refused with 415):

- ``POST /_sim/jobs``: ``{"key": ..., <add_job arguments>}`` -> ``{"id": ...}``
- ``POST /_sim/faults``: ``{"kind": ..., <inject arguments>}``; ``DELETE /_sim/faults`` clears
- ``POST /_sim/keys/revoke``, ``POST /_sim/keys/add``: ``{"key": ...}``
- ``POST /_sim/advance``: ``{"seconds": ...}`` -> ``{"offset": ..., "now": ...}``
- ``GET /_sim/calls`` -> ``{"calls": [...]}``; ``POST /_sim/reset_calls``
- ``GET /_sim/health`` -> ``{"ok": true, "now": ...}``

Images (always on, no auth, like a public image host): ``GET /_sim/images/<name>-WxH.png
?title=...`` draws a PNG of that size (``.jpg`` a JPEG, ``.svg`` a static SVG; see ``images.py``
and ``raster.py``). With ``image_base`` set to the simulator's own URL, generated answers'
``image_url`` point at its PNGs instead of example.org.
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
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from . import faults, images, raster
from .corpus import generate_completion
from .validation import problem, question_of, validate_create

KEY_PATTERN = re.compile(r"^pplx-[A-Za-z0-9_-]{8,}$")
ENDPOINTS = ("get", "list", "create")
FAULT_KINDS = faults.KINDS
OUTCOMES = ("COMPLETED", "FAILED")
API_ROOT = "/v1/async/sonar"
MAX_BODY_BYTES = 1_000_000

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
        self.calls.reset()

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
        key = _bearer(environ)
        endpoint: str | None = None
        job_id: str | None = None
        if path == API_ROOT:
            endpoint = {"GET": "list", "POST": "create"}.get(method)
            allowed = "GET, POST"
        elif path.startswith(API_ROOT + "/") and "/" not in path[len(API_ROOT) + 1 :]:
            job_id = path[len(API_ROOT) + 1 :]
            endpoint = "get" if method == "GET" else None
            allowed = "GET"
        else:
            allowed = ""
        body = _read_body(environ) if method in {"POST", "PUT", "PATCH"} else b""

        if not allowed:
            response = _detail(404, "Not Found")
        elif endpoint is None:
            response = _detail(405, "Method Not Allowed", [("Allow", allowed)])
        elif not key:
            response = _detail(401, "Not authenticated: send Authorization: Bearer <api key>")
        elif not self.key_accepted(key):
            response = _detail(401, "Invalid API key, or the key has been revoked")
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
        if endpoint == "list":
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
            if isinstance(fault.retry_after, str):
                retry = fault.retry_after  # sent as given: "inf", "1e20", a date in the past
            else:
                retry = str(max(0, math.ceil(fault.retry_after)))
            return _detail(429, "Rate limit exceeded", [("Retry-After", retry)])
        if fault.kind == "server_error":
            return _detail(500, "Internal Server Error")
        if fault.kind == "not_found":
            return _detail(404, "Not Found")
        if fault.kind == "not_json":
            return _Response(200, _NOT_JSON_BODY, [("Content-Type", "text/html")])
        if fault.kind == "not_a_job":
            return _json(200, {"hello": 1})
        if fault.kind == "oversize":
            chunks = faults.oversize(fault.size, job_id or "list")
            length = fault.size if fault.declare_length else None
            headers = [("Content-Type", "application/json")]
            return _Response(200, b"", headers, chunks=chunks, length=length)
        if fault.kind == "gzip_bomb":
            headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
            return _Response(200, faults.gzip_bomb(fault.size), headers)
        return self._list(key, None)  # list_instead_of_job

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

    def _rate_limited(self, key: str, now: float) -> _Response | None:
        limit = self.create_limit_per_minute
        if limit is None:
            return None
        window = self._creations.setdefault(key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) < limit:
            window.append(now)
            return None
        retry = max(1, math.ceil(window[0] + 60 - now))
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

    def _control(self, method: str, path: str, environ: dict[str, Any]) -> _Response:
        if not _loopback_host(environ):
            return _detail(403, "Control endpoints answer only on a loopback Host.")
        routes: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
            "/_sim/jobs": {"POST": lambda b: {"id": self.add_job(**b)}},
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
