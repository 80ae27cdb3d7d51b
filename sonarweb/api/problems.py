"""Errors as ``application/problem+json`` (RFC 9457): ``type``, ``title``, ``status``,
``detail``, and a few extension members (``errors``, ``retry_after``, ``poll_after_seconds``).

Each ``type`` is the public docs page's anchor for the problem (``/api/v1/docs#problem-…``),
so a client (or a person) can look it up; ``title`` is the same for every occurrence of a
type, ``detail`` says what happened this time. Nothing here repeats a secret or an upstream
protocol's name for a thing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

log = logging.getLogger("sonarweb.api")

CONTENT_TYPE = "application/problem+json"

# Every problem type the API answers with, and its title; the docs page lists them.
TITLES = {
    "unauthorized": "A valid API token is needed",
    "token-in-url": "API tokens are never sent in a URL",
    "insufficient-scope": "This token may only read",
    "forbidden": "Not allowed",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "invalid-request": "The request is not valid",
    "key-not-accepted": "The API takes no Perplexity API key",
    "idempotency-key-required": "Starting research needs an Idempotency-Key header",
    "idempotency-key-reused": "This Idempotency-Key was used with another body",
    "request-removed": "The request this Idempotency-Key made was removed",
    "no-api-key": "No usable Perplexity API key is saved",
    "upstream-rejected": "Perplexity refused the start",
    "upstream-rate-limited": "Perplexity is rate-limiting the key",
    "upstream-unavailable": "Perplexity could not be reached",
    "upstream-error": "Perplexity answered with an error",
    "one-start-at-a-time": "Another start is still waiting for Perplexity",
    "rate-limited": "Too many write calls with this token",
    "not-finished": "The research has not finished",
    "no-answer": "The request has no answer",
    "not-cancellable": "The run cannot be cancelled",
    "search-too-slow": "The search took too long",
    "tokens-off": "API tokens are not set up on this server",
    "server-error": "Something went wrong on the server",
}
SEARCH_TOO_SLOW = (
    "The search took too long and was stopped: use fewer common words, or drop a quoted phrase."
)


class Problem(Exception):
    """An error answer. ``kind`` is a key of TITLES; ``extra`` becomes extension members."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if kind not in TITLES:
            raise ValueError(f"unknown problem type {kind!r}")
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def document(request: HttpRequest, problem: Problem) -> dict[str, Any]:
    docs = reverse("api:openapi-view")
    body: dict[str, Any] = {
        "type": request.build_absolute_uri(f"{docs}#problem-{problem.kind}"),
        "title": TITLES[problem.kind],
        "status": problem.status,
        "detail": problem.detail,
    }
    body.update(problem.extra)
    return body


def response(request: HttpRequest, problem: Problem) -> HttpResponse:
    return HttpResponse(
        json.dumps(document(request, problem), ensure_ascii=False),
        status=problem.status,
        content_type=CONTENT_TYPE,
        headers={**problem.headers, "Cache-Control": "no-store"},
    )


def unauthorized(detail: str = "") -> Problem:
    return Problem(
        401,
        "unauthorized",
        detail
        or "Send a token as “Authorization: Bearer sw_…”. Make one in Settings, under API "
        "tokens; a revoked or expired token, or one of a deactivated member, no longer works.",
        headers={"WWW-Authenticate": 'Bearer realm="sonarweb"'},
    )


def invalid(errors: list[dict[str, str]]) -> Problem:
    """422 for the fields in ``errors`` (``field``, ``message``), each said in the detail."""
    detail = " ".join(f"{e['field']}: {e['message']}" for e in errors) or "Invalid request."
    return Problem(422, "invalid-request", detail, errors=errors)


def retry_after(problem_status: int, kind: str, detail: str, seconds: int) -> Problem:
    """A problem that says when to try again, in the header and in the document."""
    seconds = max(1, int(seconds))
    return Problem(
        problem_status,
        kind,
        detail,
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
    )
