"""The JSON API under /api/v1/ (django-ninja): start, track, read, list, cancel and share.

Every operation takes a bearer token (``auth.py``): the read scope lists, gets and searches;
the write scope also starts, tracks, cancels and shares, within a per-token write limit.
Requests are named by sonarweb's own id (the permalink's slug) and described in sonarweb's
status vocabulary; the upstream id, and so which Perplexity protocol runs a request, is never
shown. Errors are problem documents (``problems.py``). The OpenAPI document and the docs
page describe the API, not the team's data, and are public.
"""

import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, URLResolver, path, re_path, reverse
from django.utils import timezone
from ninja import Header, NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError

from sonarweb.accounts.models import AuditAction
from sonarweb.accounts.views.access import may_manage
from sonarweb.perplexity import client as upstream
from sonarweb.tracker import audit
from sonarweb.tracker.archive.search import Filters, Search, SearchTooSlow
from sonarweb.tracker.archive.search.bound import bounded
from sonarweb.tracker.following.starting import STARTING_PREFIX
from sonarweb.tracker.forms import STATUS_FILTER_CHOICES
from sonarweb.tracker.ids import RUN_ID, InvalidRequestId, extract_request_id
from sonarweb.tracker.listing import decode_cursor, encode_cursor, filtered
from sonarweb.tracker.models import AnswerArchive, ApiKey, ShareLink, TrackedRequest
from sonarweb.tracker.views.cancel import cancel_as
from sonarweb.tracker.views.importing import PasteReport, track_ids
from sonarweb.tracker.views.messages_upstream import retry_seconds

from . import problems, starts
from .auth import READ, WRITE, TokenAuth
from .docs import PlainDocs
from .problems import Problem, retry_after
from .schemas import (
    AnswerOut,
    ProblemOut,
    RequestList,
    RequestOut,
    ResearchIn,
    RevokedOut,
    ShareIn,
    ShareOut,
    TrackIn,
)
from .sections import split_sections
from .serialize import poll_after_seconds, request_out, section_list, sources_of, title_of

log = logging.getLogger("sonarweb.api")

DEFAULT_PAGE_ROWS = 25
MAX_PAGE_ROWS = 100
# An answer up to this long comes whole when no section or page is asked for.
WHOLE_ANSWER_CHARS = 60_000
DEFAULT_PAGE_SECTIONS = 5
MAX_PAGE_SECTIONS = 50
MAX_QUERY_CHARS = 200
STATUSES = [value for value, _ in STATUS_FILTER_CHOICES if value]
ERRORS: dict[int | str, Any] = {
    code: ProblemOut for code in (400, 401, 403, 404, 409, 410, 422, 429, 502, 503)
}


class SonarwebAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document says what errors really are: problem documents."""

    def get_openapi_operation_id(self, operation: Any) -> str:
        """``start_research`` rather than ``sonarweb_api_views_start_research``: clients that
        generate code from the document name their methods after these."""
        return str(operation.view_func.__name__)

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for code, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if int(str(code)) >= 400 and "application/json" in content:
                        answer["content"] = {problems.CONTENT_TYPE: content["application/json"]}
        return schema


api = SonarwebAPI(
    title="sonarweb API",
    version="1",
    description=(
        "Start deep research, follow it, and read the team's archive of answers. Send a token "
        "made in sonarweb's Settings as `Authorization: Bearer sw_…`. Errors are "
        "application/problem+json (RFC 9457). See docs/api.md for examples."
    ),
    urls_namespace="api",
    docs=PlainDocs(),
    docs_url="/docs",
    openapi_url="/openapi.json",
    docs_decorator=login_not_required,
)


def _operation(
    method: str, path: str, auth: TokenAuth, ok: dict[int | str, Any], summary: str, tag: str
) -> Any:
    """An operation for a token of ``auth``'s scope, which the OpenAPI document shows as
    ``x-scope`` (and the docs page with it); any of them may answer a problem document."""
    return api.api_operation(
        [method],
        path,
        auth=auth,
        openapi_extra={"x-scope": auth.scope},
        response={**ok, **ERRORS},
        summary=summary,
        tags=[tag],
    )


# -- errors -----------------------------------------------------------------------------------


@api.exception_handler(Problem)
def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return problems.response(request, exc)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problems.response(request, problems.unauthorized())


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problems.response(request, Problem(404, "not-found", "There is no such request."))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    kind = {401: "unauthorized", 403: "forbidden", 404: "not-found"}.get(
        exc.status_code, "invalid-request"
    )
    return problems.response(request, Problem(exc.status_code, kind, str(exc)))


_SECRET_FIELD = re.compile(r"(^|_)(api_?key|key|token|secret|authorization|bearer)$|^pplx")


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        loc = error.get("loc", ())
        if loc and loc[0] == "header" and error.get("type") == "missing":
            missing = Problem(400, "idempotency-key-required", starts.KEY_REQUIRED)
            return problems.response(request, missing)
        parts = [str(p) for p in loc if p not in ("body", "payload", "query", "header", "path")]
        field = ".".join(parts) or "body"
        secret = _SECRET_FIELD.search(field.rsplit(".", 1)[-1].lower())
        if error.get("type") == "extra_forbidden" and secret:
            return problems.response(
                request,
                Problem(
                    422,
                    "key-not-accepted",
                    "The API never takes a Perplexity API key: research starts with the key "
                    "saved in sonarweb's Settings. Remove the field and send again.",
                ),
            )
        # Never the value sent: only where the error is and what is wrong.
        errors.append({"field": field, "message": str(error.get("msg", "invalid"))})
    return problems.response(request, problems.invalid(errors))


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("API request %s %s failed", request.method, request.path)
    return problems.response(
        request,
        Problem(500, "server-error", "The request failed on the server; it was logged."),
    )


# -- helpers ----------------------------------------------------------------------------------


def _tracked(slug: str) -> TrackedRequest:
    return get_object_or_404(TrackedRequest.objects.select_related("added_by"), slug=slug)


def _detail_url(tracked: TrackedRequest) -> str:
    return reverse("api:get_request", args=[tracked.slug])


# -- start and track --------------------------------------------------------------------------


@_operation(
    "POST", "/research", WRITE, {200: RequestOut, 201: RequestOut}, "Start research", "research"
)
def start_research(
    request: HttpRequest,
    body: ResearchIn,
    response: HttpResponse,
    idempotency_key: str = Header(
        ...,
        alias="Idempotency-Key",
        description=(
            "Required. A key you make for this start (a UUID) and send again with its "
            "retries: the same key returns the same request, never a second run."
        ),
    ),
) -> Status[dict[str, Any]]:
    """Start a research run with the token's member's saved Perplexity key. Answers 201 with
    the new request, or 200 with the request an earlier start with the same Idempotency-Key
    made (waiting for it while it is still starting); 409 when that key came with another
    body."""
    started = starts.start(request.auth.user, idempotency_key, body)
    response["Location"] = request.build_absolute_uri(_detail_url(started.tracked))
    if started.replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(200 if started.replayed else 201, request_out(request, started.tracked))


@_operation(
    "POST",
    "/requests",
    WRITE,
    {200: RequestOut, 201: RequestOut},
    "Track an existing request",
    "requests",
)
def track_request(
    request: HttpRequest, body: TrackIn, response: HttpResponse
) -> Status[dict[str, Any]]:
    """Follow a run or job started elsewhere, by its id (or a URL or JSON that holds it):
    201 when sonarweb now tracks it, 200 when it already did."""
    user = request.auth.user
    try:
        request_id = extract_request_id(body.request_id)
    except InvalidRequestId as exc:
        raise Problem(422, "invalid-request", str(exc)) from exc
    if request_id.startswith("resp_") and not RUN_ID.fullmatch(request_id):
        raise Problem(422, "invalid-request", "That id is cut short or has extra characters.")
    if request_id.startswith(STARTING_PREFIX):
        raise Problem(422, "invalid-request", "That is not the id of a run or a job.")
    if not ApiKey.objects.filter(user_id=user.pk).exists():
        raise Problem(
            422, "no-api-key", "Save your Perplexity API key in Settings before tracking."
        )
    report = PasteReport()
    track_ids(user, [request_id], report)
    if report.tracked:
        audit.record_imported(user, [request_id])
    elif not report.already:
        raise retry_after(503, "upstream-unavailable", "The request was not tracked; try again.", 1)
    tracked = TrackedRequest.objects.select_related("added_by").get(request_id=request_id)
    response["Location"] = request.build_absolute_uri(_detail_url(tracked))
    return Status(201 if report.tracked else 200, request_out(request, tracked))


# -- read -------------------------------------------------------------------------------------


@_operation("GET", "/requests", READ, {200: RequestList}, "List and search requests", "requests")
def list_requests(
    request: HttpRequest,
    status: str = Query("", description="A status, such as IN_PROGRESS or COMPLETED."),
    q: str = Query("", max_length=MAX_QUERY_CHARS, description="Words to search for."),
    member: str = Query("", description="The username of the member who added them."),
    cursor: str = Query("", description="next_cursor of the previous page."),
    limit: int = Query(DEFAULT_PAGE_ROWS, ge=1, le=MAX_PAGE_ROWS),
) -> dict[str, Any]:
    """The team's requests, newest first, a page at a time; ``q`` searches questions,
    titles and answers."""
    status = status.strip().upper()
    if status and status not in STATUSES:
        raise Problem(422, "invalid-request", f"status must be one of {', '.join(STATUSES)}.")
    member_id = None
    if member.strip():
        member_id = (
            get_user_model()
            .objects.filter(username=member.strip())
            .values_list("pk", flat=True)
            .first()
        )
        if member_id is None:
            raise Problem(422, "invalid-request", "No member has that username.")
    after = decode_cursor(cursor) if cursor else None
    if cursor and after is None:
        raise Problem(422, "invalid-request", "That cursor is not one this API gave.")
    rows = filtered(Filters(member_id=member_id, badge=status))
    text = q.strip()
    if text:
        found = Search(text)
        sql, params = found.backend.derived(found.query, None, ranked=False)
        # The search's own SQL, built from constant pieces; every value is a parameter.
        matching = RawSQL(f"SELECT id FROM ({sql}) m", params)  # noqa: S608, S611
        rows = rows.filter(pk__in=matching)
    if after is not None:
        created, pk = after
        rows = rows.filter(created__lte=created).exclude(created=created, pk__gte=pk)
    query = rows.order_by("-created", "-id").select_related("added_by")[: limit + 1]
    try:
        with bounded(connection, float(settings.SONARWEB_SEARCH_SECONDS)):
            page = list(query)
    except SearchTooSlow as exc:
        raise Problem(422, "search-too-slow", problems.SEARCH_TOO_SLOW) from exc
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [request_out(request, row) for row in page],
        "next_cursor": encode_cursor(page[-1]) if more and page else None,
    }


@_operation("GET", "/requests/{id}", READ, {200: RequestOut}, "Get a request", "requests")
def get_request(request: HttpRequest, id: str) -> dict[str, Any]:
    """One request: its status, times, model, cost, title and permalink; while it runs,
    ``poll_after_seconds`` says when to ask again."""
    return request_out(request, _tracked(id))


@_operation("GET", "/requests/{id}/answer", READ, {200: AnswerOut}, "Read the answer", "requests")
def get_answer(
    request: HttpRequest,
    id: str,
    section: int | None = Query(None, ge=1, description="One section, 1 for the first."),
    page: int | None = Query(None, ge=1, description="A page of sections, 1 for the first."),
    page_size: int = Query(DEFAULT_PAGE_SECTIONS, ge=1, le=MAX_PAGE_SECTIONS),
) -> dict[str, Any]:
    """The answer's markdown, its sections (split at headings, long ones cut further) and its
    numbered sources. Long answers come a section (``?section=N``) or a page of sections
    (``?page=N&page_size=K``) at a time; without either, an answer of up to 60,000 characters
    comes whole and a longer one as its first page."""
    tracked = _tracked(id)
    wait = poll_after_seconds(tracked)
    if not tracked.has_answer and wait is not None:
        raise Problem(
            409,
            "not-finished",
            f"The research is still running ({tracked.status_label}); ask again after {wait} s.",
            headers={"Retry-After": str(wait)},
            poll_after_seconds=wait,
            status_of_request=tracked.badge_status,
        )
    if not tracked.has_answer:
        raise Problem(
            404,
            "no-answer",
            f"This request has no archived answer. {tracked.status_sentence}".strip(),
            status_of_request=tracked.badge_status,
        )
    archive = get_object_or_404(AnswerArchive.objects.only("markdown", "raw_json"), pk=tracked.pk)
    markdown = archive.markdown or ""
    sections = split_sections(markdown)
    count = len(sections)
    if section is not None:
        if section > count:
            raise Problem(
                422, "invalid-request", f"This answer has {count} sections (1 to {count})."
            )
        chosen, page, size, pages = [sections[section - 1]], 1, 1, 1
    else:
        whole = page is None and len(markdown) <= WHOLE_ANSWER_CHARS
        size = max(count, 1) if whole else page_size
        page = page or 1
        pages = max(1, -(-count // size))
        if page > pages:
            raise Problem(422, "invalid-request", f"This answer has {pages} pages of {size}.")
        chosen = sections[(page - 1) * size : page * size]
    return {
        "id": tracked.slug,
        "status": tracked.badge_status,
        "title": title_of(tracked),
        "markdown": "".join(s.text for s in chosen),
        "section": section,
        "page": page,
        "page_size": size,
        "pages": pages,
        "next_page": page + 1 if section is None and page < pages else None,
        "total_length": len(markdown),
        "sections": section_list(sections),
        "sources": sources_of(archive),
    }


# -- cancel and share -------------------------------------------------------------------------


@_operation(
    "POST",
    "/requests/{id}/cancel",
    WRITE,
    {202: RequestOut},
    "Cancel a running request",
    "requests",
)
def cancel_request(request: HttpRequest, id: str) -> Status[dict[str, Any]]:
    """Ask for the run to stop (the member who added it, or staff). Answers 202 at once: the
    request shows ``cancelling`` until it ends CANCELLED, keeping what it had written."""
    user = request.auth.user
    tracked = _tracked(id)
    if not may_manage(user, tracked):
        raise Problem(
            403, "forbidden", "Only staff and the member who added a request can cancel it."
        )
    result = cancel_as(user, tracked)
    exc = result.error
    if result.outcome == "sent" or result.refusal == "already":
        return Status(202, request_out(request, _tracked(tracked.slug)))
    if result.outcome == "refused":
        detail = {
            "finished": "This request has already finished.",
            "not_cancellable": "This request cannot be cancelled: it is not a run in progress.",
        }.get(result.refusal, "This request cannot be cancelled.")
        raise Problem(409, "not-cancellable", detail)
    if result.outcome == "no_key" or isinstance(exc, upstream.Unauthorized):
        raise Problem(422, "no-api-key", result.sentence)
    if isinstance(exc, upstream.Rejected | upstream.NotFound):
        raise Problem(409, "not-cancellable", result.sentence)
    if isinstance(exc, upstream.RateLimited):
        raise retry_after(429, "upstream-rate-limited", result.sentence, retry_seconds(exc) or 60)
    raise retry_after(503, "upstream-unavailable", result.sentence, 5)


@_operation("POST", "/requests/{id}/share", WRITE, {201: ShareOut}, "Make a public link", "sharing")
def share_request(
    request: HttpRequest,
    id: str,
    body: ShareIn | None = None,
) -> Status[dict[str, Any]]:
    """A new public, read-only link to the archived answer, which anyone can open without
    signing in until it expires or is revoked."""
    user = request.auth.user
    tracked = _tracked(id)
    if not tracked.has_answer:
        raise Problem(409, "no-answer", "Only an archived answer can be shared.")
    days = body.expires_in_days if body is not None else None
    expires_at = timezone.now() + timedelta(days=days) if days else None
    link = ShareLink.objects.create(tracked=tracked, created_by=user, expires_at=expires_at)
    audit.record(user, AuditAction.LINK_CREATED, link=link)
    log.info("user_id=%s created share link id=%s through the API", user.pk, link.pk)
    url = request.build_absolute_uri(reverse("shared_answer", kwargs={"token": link.token}))
    return Status(201, {"url": url, "created_at": link.created, "expires_at": link.expires_at})


@_operation(
    "DELETE", "/requests/{id}/share", WRITE, {200: RevokedOut}, "Revoke its public links", "sharing"
)
def unshare_request(request: HttpRequest, id: str) -> dict[str, int]:
    """Revoke every public link to the answer: they answer “Not found” from now on."""
    user = request.auth.user
    tracked = _tracked(id)
    revoked = 0
    for link in ShareLink.objects.active().filter(tracked=tracked).select_related("tracked"):
        # Conditional, so a revocation racing this one keeps its time and its event.
        if ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        ):
            audit.record(user, AuditAction.LINK_REVOKED, link=link)
            revoked += 1
    return {"revoked": revoked}


# -- URLs -------------------------------------------------------------------------------------


def _index(request: HttpRequest) -> HttpResponse:
    """/api/v1/: where the docs and the OpenAPI document are."""
    return JsonResponse(
        {
            "docs": request.build_absolute_uri(reverse("api:openapi-view")),
            "openapi": request.build_absolute_uri(reverse("api:openapi-json")),
        }
    )


def _unknown(request: HttpRequest, rest: str = "") -> HttpResponse:
    return problems.response(
        request, Problem(404, "not-found", "There is no such API address; see the docs.")
    )


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's URL configuration, for ``path("api/v1/", ...)`` in sonarweb/urls.py.

    The API needs no session: its operations check a bearer token instead, and its docs are
    public. So the login-required middleware lets every one of them through."""
    patterns, app_name, namespace = api.urls
    patterns = [
        path("", _index, name="index"),
        *patterns,
        re_path(r"^(?P<rest>.*)$", _unknown, name="unknown"),
    ]
    for pattern in patterns:
        login_not_required(pattern.callback)
    return patterns, app_name, namespace
