"""The only code that speaks HTTP to Perplexity: the Agent API and the retired Sonar API.

Every call has a connect timeout, a read timeout, a total deadline (connect, headers and body
together, however slowly the bytes arrive) and a cap on the decoded body size, and every
failure becomes one of the typed errors below, each with a sentence a person understands. The
API key travels only in the Authorization header: it is never put in a URL, an exception
message or a log line.
"""

from __future__ import annotations

import codecs
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from sonarweb import deadlines

from . import agent, documents, sonar
from . import transport as wire
from .payload import Job, JobPage, PayloadError

log = logging.getLogger("sonarweb.upstream")
T = TypeVar("T")

USER_AGENT = "sonarweb/0.1 (+https://github.com/sonarweb)"
# Defaults for a client built without settings (settings.py has the same values).
TOTAL_TIMEOUT = 30.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# However Retry-After is spelled, a wait is clamped to this range (seconds).
MAX_RETRY_AFTER = 300.0


class UpstreamError(Exception):
    """Base of every failure talking to upstream. ``transient`` ones are retried."""

    transient = True
    message = "Perplexity could not be reached."

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message or self.message)
        self.status = status

    @property
    def note(self) -> str:
        return str(self)


class NetworkError(UpstreamError):
    message = "Perplexity could not be reached (network error)."


class UpstreamTimeout(UpstreamError):
    message = "Perplexity did not answer in time."


class Cancelled(UpstreamError):
    """The caller gave up on the call (a refresher shutting down); nothing went wrong upstream."""

    message = "The call to Perplexity was cancelled."


class TooLarge(UpstreamError):
    """The answer is bigger than SONARWEB_MAX_RESPONSE_BYTES; asking again will not shrink it."""

    transient = False
    message = "Perplexity's answer is over the size limit."

    def __init__(self, limit: int, size: int | None = None) -> None:
        if size is not None:
            text = f"Perplexity's answer is {human_size(size)}, over the {human_size(limit)} limit."
        else:
            text = f"Perplexity's answer is over the {human_size(limit)} limit."
        super().__init__(text)
        self.limit = limit
        self.size = size


def human_size(n: int) -> str:
    """Bytes as people say them: 400 MB, 32 MB, 900 KB."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            value = n / size
            decimals = 0 if value >= 10 or value == int(value) else 1
            return f"{value:.{decimals}f} {unit}"
    return f"{n} bytes"


class ServerError(UpstreamError):
    message = "Perplexity had a server error."


class BadPayload(UpstreamError):
    message = "Perplexity sent an answer that could not be read."


class WrongJob(BadPayload):
    message = "Perplexity answered with a different job than the one asked for."


class RateLimited(UpstreamError):
    message = "Perplexity is rate-limiting this API key."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class Retired(UpstreamError):
    """A Sonar path answered 403 ``chat_completions_not_available``: the API is gone for good.

    Not a bad key (the same key works on the Agent API), and never worth asking again."""

    transient = False
    message = (
        "Perplexity retired the Sonar API on 2026-09-27, so this job can no longer be fetched."
    )


class Unauthorized(UpstreamError):
    transient = False
    message = "Perplexity rejected the API key."


class NotFound(UpstreamError):
    transient = False
    message = "Perplexity does not know this request id."


class Rejected(UpstreamError):
    """422 and other 4xx: the request itself is wrong; retrying will not help."""

    transient = False
    message = "Perplexity rejected the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.details = details or []


def clamp_wait(seconds: float | None) -> float | None:
    """A wait in [0, MAX_RETRY_AFTER]; None for what is not a number at all (nan)."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date, clamped to a sane range.

    Upstream has no business asking for ``inf``, ``1e20`` or a negative wait, but any of them
    must still give a wait a timedelta can hold.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return clamp_wait(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return clamp_wait(when.timestamp() - (now if now is not None else time.time()))
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class CallRecord:
    """What one upstream call did, for logs and the staff call log. Never holds the key."""

    method: str
    endpoint: str
    request_id: str
    status: int | None
    duration_ms: int
    error: str
    # From the x-ratelimit-* headers, when upstream sent them.
    rate_remaining: int | None = None
    rate_reset: float | None = None


def _error_envelope(body: Any) -> dict[str, Any]:
    """The Agent API's ``{"error": {"message", "type", "code", "param"?}}``, or {}."""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _rate_headers(headers: httpx.Headers) -> tuple[int | None, float | None]:
    """(remaining calls, seconds until the window resets) from x-ratelimit-* headers."""
    remaining_text = headers.get("x-ratelimit-remaining", "").strip()
    remaining = int(remaining_text) if remaining_text.isdigit() else None
    try:
        reset = float(headers.get("x-ratelimit-reset", "").strip())
    except ValueError:
        return remaining, None
    if math.isnan(reset):
        return remaining, None
    # Epoch seconds as seen live; a small number is read as a delay.
    if reset > 1e9:
        reset -= time.time()
    return remaining, clamp_wait(reset)


def _validation_details(body: Any) -> list[str]:
    envelope = _error_envelope(body)
    if envelope:
        message = str(envelope.get("message") or "").strip()[:300]
        param = str(envelope.get("param") or "").strip()[:100]
        if param and param not in message:
            return [f"{param}: {message}" if message else param]
        return [message] if message else []
    details = body.get("detail") if isinstance(body, dict) else None
    if isinstance(details, str):
        return [details]
    out: list[str] = []
    for item in details if isinstance(details, list) else []:
        if isinstance(item, dict):
            loc = ".".join(str(p) for p in item.get("loc", []) if p not in ("body", "request"))
            msg = str(item.get("msg", "invalid"))
            out.append(f"{loc}: {msg}" if loc else msg)
    return out


@functools.cache
def shared_http(base_url: str, connect_timeout: float, read_timeout: float) -> httpx.Client:
    """One connection pool per process and upstream: building a client costs ~15 ms
    (its TLS context), and kept-alive connections skip the handshakes. The key is sent
    per request, so clients for different keys share the pool safely."""
    return httpx.Client(
        base_url=base_url,
        headers={
            "Accept": "application/json",
            "Accept-Encoding": wire.ACCEPT_ENCODING,
            "User-Agent": USER_AGENT,
        },
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        transport=wire.DeadlineTransport(),
        follow_redirects=False,
        # Proxies from the environment would see the key; upstream is reached directly.
        trust_env=False,
    )


class PerplexityClient:
    """A small synchronous client; one instance per API key and unit of work."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        total_timeout: float = TOTAL_TIMEOUT,
        max_bytes: int = MAX_RESPONSE_BYTES,
        on_call: Callable[[CallRecord], None] | None = None,
        before_call: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        # Set by the caller to abandon a call in flight within about half a second.
        self._cancel = cancel
        self._total_timeout = total_timeout
        self._max_bytes = max_bytes
        self._on_call = on_call
        # May raise an UpstreamError (e.g. a spent call budget) to prevent the call.
        self._before_call = before_call
        self._auth = {"Authorization": f"Bearer {api_key}"}
        # Decoded body bytes this client has read, for callers that bound a pass by size.
        self.bytes_read = 0
        self._http = shared_http(base_url.rstrip("/"), connect_timeout, read_timeout)

    def __repr__(self) -> str:
        return f"<PerplexityClient {self._http.base_url}>"

    def __enter__(self) -> PerplexityClient:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing to close: the connection pool outlives the client (``shared_http``)."""

    # The Agent API --------------------------------------------------------

    def get_run(self, run_id: str) -> tuple[Job, str]:
        """One Agent run and its JSON text as received (``GET /v1/agent/{id}``)."""
        raw, text = self._call("GET", _run_path(run_id), endpoint="run", request_id=run_id)
        job = _parsed(agent.parse_response, raw)
        if job.id != run_id:
            raise WrongJob("Perplexity answered with a different run than the one asked for.")
        return job, text

    def create_run(self, body: dict[str, Any]) -> tuple[Job, str]:
        """Start a run (``POST /v1/agent``). Never retried: upstream has no idempotency key,
        so a second POST would be a second paid run."""
        raw, text = self._call("POST", agent.RUNS_PATH, endpoint="start", json_body=body)
        return _parsed(agent.parse_response, raw), text

    def cancel_run(self, run_id: str) -> str:
        """Ask upstream to cancel a run; the acknowledgement's status (``cancelling``).
        A 400 (Rejected) means the run is already finished, or unknown."""
        path = f"{_run_path(run_id)}/cancel"
        raw, _ = self._call("POST", path, endpoint="cancel", request_id=run_id, json_body={})
        return _parsed(agent.parse_cancel, raw)

    def check_key(self) -> None:
        """``GET /v1/models``, which needs a valid key: Unauthorized if the key is not one."""
        self._call("GET", agent.MODELS_PATH, endpoint="models")

    def fetch(self, request_id: str) -> tuple[Job, str]:
        """The job or run behind a tracked id, whichever protocol it belongs to."""
        if agent.is_run_id(request_id):
            return self.get_run(request_id)
        return self.get_job(request_id)

    # The Sonar API (retired: each call answers Retired) ----------------------

    def get_job(self, request_id: str) -> tuple[Job, str]:
        """One job and its JSON text as received.

        Raises WrongJob when upstream answers another document (the list, or another
        job: both have been seen), BadPayload when the answer is not a job at all.
        """
        path = f"{sonar.JOBS_PATH}/{quote(request_id, safe='')}"
        raw, text = self._call("GET", path, endpoint="get", request_id=request_id)
        if isinstance(raw, dict) and "requests" in raw and "id" not in raw:
            raise WrongJob("Perplexity answered with the list of jobs instead of this job.")
        job = _parsed(sonar.parse_job, raw)
        if job.id != request_id:
            raise WrongJob()
        return job, text

    def list_jobs(self, next_token: str | None = None) -> JobPage:
        params = {"next_token": next_token} if next_token else None
        raw, _ = self._call("GET", sonar.JOBS_PATH, endpoint="list", params=params)
        return _parsed(sonar.parse_page, raw)

    # Plumbing --------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        request_id: str = "",
        params: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> tuple[Any, str]:
        """The decoded JSON body and its text."""
        if self._before_call is not None:
            self._before_call(endpoint)
        started = time.monotonic()
        status: int | None = None
        error = ""
        rate: tuple[int | None, float | None] = (None, None)
        try:
            status, headers, body = self._exchange(method, path, params, json_body)
            rate = _rate_headers(headers)
            text = _body_text(body)
            # The bytes go before the JSON is parsed: a large answer's peak is its text and
            # the parsed objects, never its bytes as well.
            del body
            return self._decode(status, headers, text)
        except UpstreamError as exc:
            error = type(exc).__name__
            raise
        finally:
            record = CallRecord(
                method=method,
                endpoint=endpoint,
                request_id=request_id,
                status=status,
                duration_ms=int((time.monotonic() - started) * 1000),
                error=error,
                rate_remaining=rate[0],
                rate_reset=rate[1],
            )
            log.info(
                "upstream %s %s request_id=%s status=%s duration_ms=%d%s",
                method,
                endpoint,
                request_id or "-",
                status if status is not None else "-",
                record.duration_ms,
                f" error={error}" if error else "",
            )
            if self._on_call is not None:
                self._on_call(record)

    def _exchange(
        self, method: str, path: str, params: dict[str, str] | None, json_body: Any
    ) -> tuple[int, httpx.Headers, bytearray]:
        """Status, headers and decoded body bytes, all within the total deadline and cap."""
        try:
            with deadlines.deadline(self._total_timeout, self._cancel) as deadline_at:
                request = self._http.build_request(
                    method, path, params=params, json=json_body, headers=self._auth
                )
                response = self._http.send(request, stream=True)
                try:
                    body = wire.read_capped(response, self._max_bytes)
                finally:
                    response.close()
                self.bytes_read += len(body)
        except wire.BodyTooLarge as exc:
            raise TooLarge(exc.limit, exc.declared) from exc
        except wire.BadEncoding as exc:
            raise BadPayload("Perplexity sent a body that could not be decoded.") from exc
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, deadlines.CallCancelled):
                raise Cancelled() from exc
            if not isinstance(exc, httpx.TimeoutException):
                raise NetworkError() from exc
            if time.monotonic() >= deadline_at - 0.05:
                raise UpstreamTimeout(
                    f"Perplexity did not finish answering within {self._total_timeout:g} s."
                ) from exc
            raise UpstreamTimeout() from exc
        return response.status_code, response.headers, body

    @staticmethod
    def _decode(status: int, headers: httpx.Headers, text: str) -> tuple[Any, str]:
        """The JSON body and its text (``_body_text``), or the typed error its status means.
        Read as a run's or a job's document, whose sources are read one at a time (an answer
        may be a huge one); any other body has none of those, and reads as ``json.loads``."""
        try:
            body: Any = documents.load_json(text)
        except (RecursionError, ValueError):
            body = None
        envelope = _error_envelope(body)
        if status == 403 and envelope.get("type") == "chat_completions_not_available":
            raise Retired(status=status)
        if status == 401 or status == 403:
            raise Unauthorized(status=status)
        if status == 404:
            raise NotFound(status=status)
        if status == 429:
            wait = parse_retry_after(headers.get("Retry-After"))
            if wait is None:
                remaining, reset = _rate_headers(headers)
                wait = reset if remaining == 0 or reset else None
            raise RateLimited(retry_after=wait)
        if status >= 500:
            raise ServerError(f"Perplexity had a server error (HTTP {status}).", status=status)
        if 400 <= status < 500:
            details = _validation_details(body)
            text = "Perplexity rejected the request"
            raise Rejected(
                f"{text}: {'; '.join(details)}" if details else f"{text} (HTTP {status}).",
                status=status,
                details=details,
            )
        if not 200 <= status < 300:
            raise BadPayload(f"Perplexity answered HTTP {status}.", status=status)
        if body is None:
            raise BadPayload("Perplexity sent an answer that is not JSON.", status=status)
        return body, text


def _run_path(run_id: str) -> str:
    """The run's path; Rejected for what is not an Agent run id (which needs no quoting)."""
    if not agent.valid_run_id(run_id):
        raise Rejected("This is not an Agent run id.", status=400)
    return f"{agent.RUNS_PATH}/{run_id}"


def _parsed(parse: Callable[[Any], T], raw: Any) -> T:
    """``parse(raw)``; a document that is not what was asked for is BadPayload."""
    try:
        return parse(raw)
    except PayloadError as exc:
        raise BadPayload(str(exc)) from exc


def _body_text(body: bytearray | bytes) -> str:
    """The body as text, decoded once.

    JSON between systems is UTF-8 (RFC 8259), whatever charset the headers declare: a body
    labelled iso-8859-1 but sent as UTF-8 must not be archived as mojibake. Invalid bytes
    become U+FFFD rather than costing the whole answer. A byte order mark is skipped before
    decoding (stripping it from the text would copy the text).
    """
    start = len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0
    with memoryview(body) as view:
        return str(view[start:], "utf-8", "replace")


def client_for_key(api_key: str, *, interactive: bool = False, **kwargs: Any) -> PerplexityClient:
    """A client configured from settings.

    ``interactive`` calls are made while a person waits on a page: they get the shorter
    PERPLEXITY_INTERACTIVE_TIMEOUT as their total deadline, and read at most
    PERPLEXITY_INTERACTIVE_MAX_BYTES, so that a huge answer costs a web worker little.
    """
    from django.conf import settings

    total = settings.PERPLEXITY_TOTAL_TIMEOUT
    max_bytes = settings.SONARWEB_MAX_RESPONSE_BYTES
    if interactive:
        total = min(total, settings.PERPLEXITY_INTERACTIVE_TIMEOUT)
        max_bytes = min(max_bytes, settings.PERPLEXITY_INTERACTIVE_MAX_BYTES)
    return PerplexityClient(
        api_key,
        base_url=settings.PERPLEXITY_API_BASE,
        connect_timeout=min(settings.PERPLEXITY_CONNECT_TIMEOUT, total),
        read_timeout=min(settings.PERPLEXITY_READ_TIMEOUT, total),
        total_timeout=total,
        max_bytes=max_bytes,
        **kwargs,
    )
