"""Import: follow many requests at once, archive a saved answer, list a key's Sonar jobs.

The Agent API has no list endpoint (the contract's §1 and §8), so sonarweb can only follow the
runs whose ids it is given: people paste them here, in any form. A finished answer someone
saved as JSON can be uploaded and archived as if a poll had brought it. The Sonar API's job
list is still read where it answers (the simulator, or a deployment in front of a cache); since
Perplexity retired it, it answers 403 and the page says so in one calm sentence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import JobPage

from .. import audit
from ..following.polling import archive_saved
from ..ids import InvalidRequestId, validate_request_id
from ..import_forms import PasteIdsForm, SavedAnswerForm, SavedDocument
from ..keys.upstream import interactive_client, note_failure
from ..models import STATUS_LABELS, ApiKey, Origin, TrackedRequest
from .access import key_of
from .messages_upstream import try_again

log = logging.getLogger("sonarweb.importing")

MAX_SELECTED = 200
# New requests one paste may add; ids already tracked do not count, so submitting the same
# text again tracks the next ones.
MAX_PASTED = 200
# Ids looked up in one query: far below any database's limit on bound variables.
LOOKUP_CHUNK = 500
# Ids of one kind the report lists by name; the rest are counted.
REPORT_ROWS = 200
MAX_TOKEN_CHARS = 1000
_MODEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

RETIRED_SENTENCE = (
    "Perplexity retired the Sonar API on 2026-09-27, so its job list can no longer be read."
)
NO_KEY = "Add your Perplexity API key in Settings before importing."


# -- the Sonar job list -----------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    page: JobPage | None = None
    error: str = ""
    retired: bool = False


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


def _fetch(key: ApiKey, token: str | None) -> Listing:
    if token is not None and (len(token) > MAX_TOKEN_CHARS or not token.isprintable()):
        return Listing(error="This page link is not valid. Start again from the first page.")
    try:
        with interactive_client(key) as api:
            return Listing(page=api.list_jobs(token))
    except upstream.Retired:
        # Not the key's fault, and not worth asking again: no note on the key.
        return Listing(error=RETIRED_SENTENCE, retired=True)
    except upstream.UpstreamError as exc:
        return Listing(error=_list_error(exc, key))


def list_page_url(token: str) -> str:
    """The import page showing another page of the Sonar list (a ``next_token`` it gave)."""
    return f"{reverse('import_jobs')}?next_token={quote(token, safe='/')}"


def _page_context(listing: Listing) -> dict[str, object]:
    page = listing.page
    jobs = list(page.jobs) if page else []
    # One query for the page's ids, however many rows it has (a page is a few dozen).
    tracked = _existing([j.id for j in jobs])
    rows = []
    for job in jobs:
        # The list says nothing of a job's question; a tracked row may know it.
        known = tracked.get(job.id, ReportRow(job.id))
        label = STATUS_LABELS.get(job.status, job.status)
        rows.append({"job": job, "slug": known.slug, "heading": known.heading, "label": label})
    return {
        "rows": rows,
        "next_token": page.next_token if page else None,
        "more_url": list_page_url(page.next_token) if page and page.next_token else "",
        "error": listing.error,
        "retired": listing.retired,
    }


# -- the page ---------------------------------------------------------------------------------


def _render(
    request: HttpRequest,
    key: ApiKey | None,
    *,
    status: int = 200,
    listing: Listing | None = None,
    **context: Any,
) -> HttpResponse:
    """The import page. The Sonar list is read only for a plain GET (``listing``); answers to
    a submit show the forms and their outcome without another call upstream."""
    context.setdefault("paste_form", PasteIdsForm())
    context.setdefault("upload_form", SavedAnswerForm())
    context.setdefault("max_pasted", MAX_PASTED)
    context.update(key=key, listed=listing is not None, rows=[])
    if listing is not None:
        context.update(_page_context(listing))
    return render(request, "tracker/import.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def import_jobs(request: HttpRequest) -> HttpResponse:
    key = key_of(request)
    if request.method == "POST":
        if "pasted" in request.POST:
            return _track_pasted(request, key)
        return _track_selected(request, key)
    if key is None or key.is_invalid:
        return _render(request, key)
    token = request.GET.get("next_token") or None
    listing = _fetch(key, token)
    retry_url = list_page_url(token) if token else ""
    if request.htmx:
        # "Load more" replaces its own row with the next rows and a new "Load more" row;
        # errors come back as a row too, with status 200 so htmx swaps them in.
        context = {"key": key, "token": token, "retry_url": retry_url, **_page_context(listing)}
        return render(request, "tracker/import.html#page_rows", context)
    return _render(request, key, listing=listing, token=token, retry_url=retry_url)


# -- tracking the jobs chosen from the list ---------------------------------------------------


def _track_selected(request: HttpRequest, key: ApiKey | None) -> HttpResponse:
    here = reverse("import_jobs")
    if key is None:
        messages.error(request, NO_KEY)
        return HttpResponseRedirect(here, status=303)
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
        return HttpResponseRedirect(here, status=303)
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
    return HttpResponseRedirect(reverse("dashboard"), status=303)


def _model(value: str) -> str:
    # Only a first guess: the first poll stores the model upstream reports.
    value = value.strip()
    return value if _MODEL.fullmatch(value) else ""


# -- tracking pasted ids ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    request_id: str
    slug: str = ""
    heading: str = ""


@dataclass
class PasteReport:
    """What one paste did, id by id."""

    tracked: list[ReportRow] = field(default_factory=list)
    already: list[ReportRow] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)
    repeats: int = 0
    # Ids not looked at because this paste already tracked MAX_PASTED new requests.
    over_cap: int = 0
    limit: int = MAX_PASTED

    @property
    def shown_already(self) -> list[ReportRow]:
        return self.already[:REPORT_ROWS]

    @property
    def more_already(self) -> int:
        return max(0, len(self.already) - REPORT_ROWS)

    @property
    def shown_invalid(self) -> list[tuple[str, str]]:
        return self.invalid[:REPORT_ROWS]

    @property
    def more_invalid(self) -> int:
        return max(0, len(self.invalid) - REPORT_ROWS)


def _existing(ids: Sequence[str]) -> dict[str, ReportRow]:
    rows = TrackedRequest.objects.filter(request_id__in=list(ids)).values_list(
        "request_id", "slug", "title", "question"
    )
    return {id_: ReportRow(id_, slug, title or question) for id_, slug, title, question in rows}


def _create(user: AbstractBaseUser, ids: list[str], report: PasteReport) -> None:
    """Track these ids (none of them tracked a moment ago), and sort out any that someone
    else tracked meanwhile."""
    if not ids:
        return
    now = timezone.now()
    new = {
        request_id: TrackedRequest(
            request_id=request_id, added_by=user, origin=Origin.IMPORTED, next_poll_at=now
        )
        for request_id in ids
    }
    TrackedRequest.objects.bulk_create(new.values(), ignore_conflicts=True)
    stored = _existing(ids)
    for request_id in ids:
        row = stored.get(request_id)
        if row is None:
            # Skipped on a (vanishingly rare) slug collision: the next submit tracks it.
            report.over_cap += 1
            continue
        ours = row.slug == new[request_id].slug
        (report.tracked if ours else report.already).append(row)


def track_ids(user: AbstractBaseUser, ids: Sequence[str], report: PasteReport) -> None:
    """Track the ids not tracked yet, at most ``MAX_PASTED`` of them; report each one.

    Ids are looked up ``LOOKUP_CHUNK`` at a time, so a paste of any length never puts an
    unbounded list into one SQL ``IN``.
    """
    size = LOOKUP_CHUNK
    for start in range(0, len(ids), size):
        room = MAX_PASTED - len(report.tracked)
        if room <= 0:
            report.over_cap += len(ids) - start
            return
        chunk = ids[start : start + size]
        existing = _existing(chunk)
        new: list[str] = []
        for request_id in chunk:
            if request_id in existing:
                report.already.append(existing[request_id])
            elif len(new) < room:
                new.append(request_id)
            else:
                report.over_cap += 1
        _create(user, new, report)


def _track_pasted(request: HttpRequest, key: ApiKey | None) -> HttpResponse:
    form = PasteIdsForm(request.POST)
    if key is None:
        form.add_error(None, NO_KEY)
    if not form.is_valid():
        return _render(request, key, paste_form=form, status=422)
    found = form.cleaned_data["pasted"]
    report = PasteReport(invalid=found.invalid, repeats=found.repeats)
    track_ids(request.user, found.ids, report)
    created = [row.request_id for row in report.tracked]
    log.info(
        "user_id=%s pasted ids: %d tracked, %d already tracked, %d invalid, %d over the cap",
        request.user.pk,
        len(created),
        len(report.already),
        len(report.invalid),
        report.over_cap,
    )
    audit.record_imported(request.user, created)
    return _render(request, key, report=report)


# -- archiving a saved answer -----------------------------------------------------------------


@dataclass(frozen=True)
class UploadOutcome:
    tracked: TrackedRequest
    archived: bool


def archive_upload(user: AbstractBaseUser, saved: SavedDocument) -> UploadOutcome:
    """Archive an uploaded finished answer into its row, creating the row if needed. A row
    that already holds an archive keeps it (``archived`` is then False)."""
    job = saved.job
    tracked = TrackedRequest.objects.filter(request_id=job.id).first()
    if tracked is None:
        try:
            with transaction.atomic():
                # Not due: the file is the answer, and the refresher must not race it.
                tracked = TrackedRequest.objects.create(
                    request_id=job.id,
                    added_by=user,
                    origin=Origin.IMPORTED,
                    question=saved.question,
                    next_poll_at=None,
                )
        except IntegrityError:
            # Someone tracked it between our check and our insert.
            tracked = TrackedRequest.objects.get(request_id=job.id)
        else:
            audit.record_imported(user, [job.id])
    if tracked.archived_at is not None:
        return UploadOutcome(tracked, archived=False)
    if saved.question and not tracked.question:
        TrackedRequest.objects.filter(pk=tracked.pk, question="").update(question=saved.question)
    return UploadOutcome(tracked, archived=archive_saved(tracked, job, saved.raw_text))


@require_POST
def upload_saved(request: HttpRequest) -> HttpResponse:
    key = key_of(request)
    form = SavedAnswerForm(request.POST, request.FILES)
    if not form.is_valid():
        # The sentence says what is wrong; nothing of the file is logged.
        log.info("user_id=%s uploaded a file that was refused", request.user.pk)
        return _render(request, key, upload_form=form, status=422)
    outcome = archive_upload(request.user, form.cleaned_data["document"])
    tracked = outcome.tracked
    if not outcome.archived:
        return _render(request, key, already_archived=tracked)
    log.info(
        "user_id=%s archived an uploaded answer into tracked request %s (%d bytes)",
        request.user.pk,
        tracked.pk,
        form.cleaned_data["document"].size,
    )
    messages.success(request, "The uploaded answer is archived.")
    return HttpResponseRedirect(tracked.get_absolute_url(), status=303)
