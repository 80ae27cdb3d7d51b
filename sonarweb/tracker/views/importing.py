"""Import: list the jobs of the member's key upstream and track many at once."""

from __future__ import annotations

import logging
import re

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from sonarweb.accounts import audit
from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import JobPage

from ..ids import InvalidRequestId, validate_request_id
from ..models import STATUS_LABELS, ApiKey, Origin, TrackedRequest
from ..upstream import interactive_client, note_failure
from .access import key_of
from .messages_upstream import try_again

log = logging.getLogger("sonarweb.importing")

MAX_SELECTED = 200
MAX_TOKEN_CHARS = 1000
_MODEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _list_error(exc: upstream.UpstreamError, key: ApiKey) -> str:
    # A 401 invalidates the key; a real 429 on the list pauses it for every caller.
    note_failure(key, exc)
    if isinstance(exc, upstream.Unauthorized):
        return "Perplexity rejected your API key (401), so its jobs cannot be listed."
    if isinstance(exc, upstream.RateLimited):
        return f"Perplexity is rate-limiting your API key. {try_again(exc)}"
    if isinstance(exc, upstream.Rejected):
        return "Perplexity did not accept this page link; it may have expired. Start again."
    return f"{exc.note} Try again in a moment."


def _fetch(key: ApiKey, token: str | None) -> tuple[JobPage | None, str]:
    if token is not None and (len(token) > MAX_TOKEN_CHARS or not token.isprintable()):
        return None, "This page link is not valid. Start again from the first page."
    try:
        with interactive_client(key) as api:
            return api.list_jobs(token), ""
    except upstream.UpstreamError as exc:
        return None, _list_error(exc, key)


def _page_context(page: JobPage | None) -> dict[str, object]:
    jobs = list(page.jobs) if page else []
    # One query for the page's ids, however many rows it has.
    tracked = dict(
        TrackedRequest.objects.filter(request_id__in=[j.id for j in jobs]).values_list(
            "request_id", "slug"
        )
    )
    rows = [
        {
            "job": job,
            "slug": tracked.get(job.id),
            "label": STATUS_LABELS.get(job.status, job.status),
        }
        for job in jobs
    ]
    return {"rows": rows, "next_token": page.next_token if page else None}


@require_http_methods(["GET", "HEAD", "POST"])
def import_jobs(request: HttpRequest) -> HttpResponse:
    key = key_of(request)
    if request.method == "POST":
        return _track_selected(request, key)
    if key is None or key.is_invalid:
        return render(request, "tracker/import.html", {"key": key, "rows": []})
    token = request.GET.get("next_token") or None
    page, error = _fetch(key, token)
    context = {"key": key, "error": error, "token": token, **_page_context(page)}
    if request.htmx:
        # "Load more" replaces its own row with the next rows and a new "Load more" row;
        # errors come back as a row too, with status 200 so htmx swaps them in.
        return render(request, "tracker/import.html#page_rows", context)
    return render(request, "tracker/import.html", context, status=200)


def _track_selected(request: HttpRequest, key: ApiKey | None) -> HttpResponse:
    if key is None:
        messages.error(request, "Add your Perplexity API key in Settings before importing.")
        return HttpResponseRedirect("/import/", status=303)
    ids: list[str] = []
    invalid = 0
    for raw in request.POST.getlist("ids")[:MAX_SELECTED]:
        try:
            request_id = validate_request_id(raw.strip())
        except InvalidRequestId:
            invalid += 1
            continue
        if request_id not in ids:
            ids.append(request_id)
    if not ids:
        messages.error(request, "Choose at least one request to track.")
        return HttpResponseRedirect("/import/", status=303)
    already = set(
        TrackedRequest.objects.filter(request_id__in=ids).values_list("request_id", flat=True)
    )
    new = [
        TrackedRequest(
            request_id=request_id,
            added_by=request.user,
            origin=Origin.IMPORTED,
            model=_model(request.POST.get(f"model.{request_id}", "")),
        )
        for request_id in ids
        if request_id not in already
    ]
    # ignore_conflicts: someone may track one of these between the check and the insert.
    TrackedRequest.objects.bulk_create(new, ignore_conflicts=True)
    log.info("user_id=%s imported %d requests", request.user.pk, len(new))
    audit.record_imported(request.user, [row.request_id for row in new])
    count = len(new)
    messages.success(request, f"Tracking {count} request{'' if count == 1 else 's'}.")
    if already:
        were = "were" if len(already) > 1 else "was"
        messages.info(request, f"{len(already)} of the chosen requests {were} already tracked.")
    if invalid:
        messages.warning(request, f"{invalid} selected ids were not valid and were skipped.")
    return HttpResponseRedirect("/", status=303)


def _model(value: str) -> str:
    # Only a first guess: the first poll stores the model upstream reports.
    value = value.strip()
    return value if _MODEL.fullmatch(value) else ""
