from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_safe

from .. import audit, listing
from ..archive.search import Filters, Search, SearchTooSlow
from ..following.polling import request_early_poll
from ..following.scheduler import FAST_SECONDS
from ..forms import STATUS_FILTER_CHOICES, DashboardFilterForm, TitleForm, TrackForm
from ..listing import encode_cursor, member_choices, used_models
from ..models import TrackedRequest
from . import handover
from .access import key_of
from .requests import SLUG, watching

MAX_BATCH = 100

STATUSES = [value for value, _ in STATUS_FILTER_CHOICES if value]
STATUS_LABELS = dict(STATUS_FILTER_CHOICES)
# The query-string parameters that say what the table shows (the poller repeats them).
FILTER_PARAMS = ("q", "status", "member", "model")


@dataclass
class View:
    """What one dashboard URL asks for, resolved to column values."""

    form: DashboardFilterForm | None
    filters: Filters
    text: str
    params: dict[str, str]

    @property
    def filtering(self) -> bool:
        filters = self.filters
        return bool(self.text or filters.badge or filters.member_id or filters.model)


def read_view(request: HttpRequest) -> View:
    members = member_choices()
    # Whatever the column holds: presets of runs not completed yet, resolved models after.
    form = DashboardFilterForm(
        request.GET or None, members=[name for name, _ in members], models=used_models()
    )
    # An unknown value in one field (a stale link) leaves only that field out of cleaned_data.
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    status = data.get("status", "")
    filters = Filters(
        member_id=dict(members).get(data.get("member") or ""),
        model=data.get("model") or "",
        badge=status if status in STATUSES else "",
    )
    params = {n: str(request.GET[n]) for n in FILTER_PARAMS if request.GET.get(n)}
    return View(form, filters, (data.get("q") or "").strip(), params)


def read_poll_view(request: HttpRequest) -> View:
    """The filters a poller repeats, without building the form (a poll every few seconds
    per open dashboard). Unknown values are ignored, as the form does."""
    get = request.GET
    member = get.get("member", "")[:150]
    member_id = (
        get_user_model().objects.filter(username=member).values_list("pk", flat=True).first()
        if member
        else None
    )
    status = get.get("status", "")
    filters = Filters(
        member_id=member_id,
        model=get.get("model", "")[:64],
        badge=status if status in STATUSES else "",
    )
    params = {n: str(get[n]) for n in FILTER_PARAMS if get.get(n)}
    return View(None, filters, get.get("q", "").strip()[:200], params)


def status_counts_context(view: View, counts: dict[str, int]) -> dict[str, Any]:
    known = [(value, STATUS_LABELS[value], counts.get(value, 0), True) for value in STATUSES]
    # A status upstream invented since is counted as itself, without a filter of its own.
    unknown = sorted((value, n) for value, n in counts.items() if value not in STATUS_LABELS)
    other = [(value, value, n, False) for value, n in unknown]
    return {
        "status_counts": known + other,
        "total_count": sum(counts.values()),
        "current_status": view.filters.badge,
        # The counts link to the dashboard with these filters (a poll's own query string
        # holds other things).
        "counts_query": QueryDict(urlencode(list(view.params.items()))),
    }


def shown_status(tracked: TrackedRequest) -> str:
    """What a row's badge shows, as the poller reports it back: its status, or CANCELLING
    while a cancel is under way (a change the badge must show though the status is the same)."""
    return "CANCELLING" if tracked.is_cancelling else tracked.badge_status


def poller_query(
    view: View, rows: list[TrackedRequest], top: str | None, counts: dict[str, int] | None
) -> str:
    """The poller's query string: the running rows with the badge each shows, the filters,
    the newest row shown and a digest of the counts shown, so that the next answer carries
    only what changed."""
    params: list[tuple[str, str]] = [("s", f"{r.slug}.{shown_status(r)}") for r in rows]
    params += list(view.params.items())
    if top:
        params.append(("top", top))
    if counts is not None:
        params.append(("c", counts_digest(counts)))
    return urlencode(params)


def _dashboard(request: HttpRequest, form: TrackForm, status: int = 200) -> HttpResponse:
    view = read_view(request)
    if view.text:
        page = listing.search(view.text, view.filters, request.GET.get("page"))
    else:
        page = listing.browse(view.filters, request.GET.get("before"), request.GET.get("after"))
    key = key_of(request)
    back = request.GET.copy()
    back.pop("edit", None)
    home = reverse("dashboard")
    polling = [r for r in page.rows if watching(r)]
    # New rows are looked for above the first page of the newest-first listing only.
    top = encode_cursor(page.rows[0]) if page.rows and page.is_first and not view.text else None
    context = {
        **status_counts_context(view, page.counts),
        "form": form,
        "filters": view.form,
        "filtering": view.filtering,
        "page_obj": page,
        "rows": page.rows,
        "key": key,
        "editing": request.GET.get("edit", ""),
        "next_url": f"{home}?{back.urlencode()}" if back else home,
        "polling_slugs": [r.slug for r in polling],
        "poller_query": poller_query(view, polling, top, page.counts) if polling else "",
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
        "off_filter": set(),
    }
    return render(request, "tracker/dashboard.html", context, status=status)


def counts_digest(counts: dict[str, int]) -> str:
    return hashlib.sha256(repr(sorted(counts.items())).encode()).hexdigest()[:12]


def fresh_counts(view: View, *, changed: bool = True) -> dict[str, int] | None:
    """The status counts for a poll: one aggregate over the indexed ``badge`` column (or the
    search's own count), counted afresh when the poll brings a ``changed`` or new row, else
    a figure a few seconds old will do (listing.COUNTS_SECONDS). None when a search count ran
    past its time bound: the poll then leaves the counts shown as they are."""
    try:
        if view.text:
            return Search(view.text).counts(view.filters)
        return listing.status_counts(view.filters, fresh=changed)
    except SearchTooSlow:
        return None


def with_whole_rows(changed: list[TrackedRequest]) -> list[TrackedRequest]:
    """The changed rows, those that stopped being polled read whole: their last poll sends
    the whole row (the resolved model replaces the preset), not the badge alone."""
    done = [r.pk for r in changed if not watching(r)]
    if not done:
        return changed
    whole = TrackedRequest.objects.filter(pk__in=done).listing().in_bulk()
    return [whole.get(r.pk, r) for r in changed]


@require_safe
def badge_batch(request: HttpRequest) -> HttpResponse:
    """One poll of an open dashboard: the badges of its running rows (whole rows for those
    that stopped), rows teammates added above its first row, the status counts, and the next
    poller.

    Reads the database only; running rows ask for an early upstream poll, which the refresher
    folds into the key's next list call.
    """
    # Each ``s`` is "<slug>.<badge shown>" (or a bare slug): only changed badges are sent.
    shown = dict(value.partition(".")[::2] for value in request.GET.getlist("s")[:MAX_BATCH])
    slugs = [s for s in shown if SLUG.fullmatch(s)]
    # A badge needs only these columns; whole rows are read for rows added above the table.
    rows = list(
        TrackedRequest.objects.filter(slug__in=slugs).only(
            "slug", "status", "state", "next_poll_at", "cancel_requested_at"
        )
    )
    changed = with_whole_rows([r for r in rows if shown.get(r.slug) != shown_status(r)])
    view = read_poll_view(request)
    status = view.filters.badge
    top = request.GET.get("top")
    new_rows = listing.newer_than(view.filters, top) if top and not view.text else []
    polling = [r for r in [*new_rows, *rows] if watching(r)]
    # Only rows whose next poll is further off than the fast interval are pulled forward
    # (request_early_poll's own condition, checked on the rows at hand): most polls then
    # write nothing, which matters on SQLite, where every write waits its turn.
    soon = timezone.now() + timedelta(seconds=FAST_SECONDS)
    early = [r.pk for r in polling if r.next_poll_at and r.next_poll_at > soon]
    if early:
        request_early_poll(early)
    # The dashboard's own poller names the counts it shows and its filters; a bare batch
    # (from a page of an older version) gets badges only.
    with_counts = any(n in request.GET for n in ("c", "top")) or any(
        request.GET.get(n) for n in FILTER_PARAMS
    )
    counts = fresh_counts(view, changed=bool(changed or new_rows)) if with_counts else None
    next_top = encode_cursor(new_rows[0]) if new_rows else top
    context = {
        **status_counts_context(view, counts or {}),
        "rows": changed,
        "whole_rows": {r.pk for r in changed if not watching(r)},
        "new_rows": new_rows,
        "with_counts": counts is not None and request.GET.get("c") != counts_digest(counts),
        # A row whose status moved out of the status filter stays, marked as such.
        "off_filter": {r.pk for r in changed if status and r.badge_status != status},
        "status_label": STATUS_LABELS.get(status, status).lower(),
        "polling_slugs": [r.slug for r in polling],
        "poller_query": poller_query(view, polling, next_top, counts) if polling else "",
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
        "next_url": reverse("dashboard"),
        "editing": "",
    }
    return render(request, "tracker/dashboard.html#badge_batch", context)


@require_http_methods(["GET", "HEAD", "POST"])
def dashboard(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return track(request)
    return _dashboard(request, TrackForm())


def track(request: HttpRequest) -> HttpResponse:
    """Start tracking a pasted request id; the same id twice leads to one permalink."""
    form = TrackForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, form, status=422)
    request_id = form.cleaned_data["request_id"]
    existing = TrackedRequest.objects.filter(request_id=request_id).only("slug").first()
    if existing is not None:
        return handover.already_tracked(request, existing)
    if key_of(request) is None:
        form.add_error(None, "Add your Perplexity API key in Settings before tracking requests.")
        return _dashboard(request, form, status=422)
    try:
        tracked = TrackedRequest.objects.create(request_id=request_id, added_by=request.user)
    except IntegrityError:
        # Someone else tracked it between our check and our insert.
        tracked = TrackedRequest.objects.get(request_id=request_id)
    return HttpResponseRedirect(tracked.get_absolute_url(), status=303)


def _safe_next(request: HttpRequest, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return reverse("dashboard")


@require_http_methods(["GET", "HEAD", "POST"])
def edit_title(request: HttpRequest, slug: str) -> HttpResponse:
    """Inline title editing: htmx swaps the form in and the saved title back.

    Without JavaScript, the "Edit title" link opens the dashboard with that row in edit mode
    and the form posts here, which redirects back.
    """
    # Any member may edit any title (one team); the answer columns are not needed for it.
    tracked = get_object_or_404(TrackedRequest, slug=slug)
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.method != "POST":
        if not request.htmx:
            separator = "&" if "?" in next_url else "?"
            return HttpResponseRedirect(f"{next_url}{separator}edit={slug}#title-{slug}")
        if request.GET.get("cancel"):
            return _title(request, tracked, next_url)
        return _title(request, tracked, next_url, TitleForm(initial={"title": tracked.title}))
    form = TitleForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            # 200, not 422: htmx swaps only successful answers, and the errors must show.
            return _title(request, tracked, next_url, form)
        messages.error(request, " ".join(form.errors.get("title", ["That title was not saved."])))
        return HttpResponseRedirect(next_url, status=303)
    tracked.title = form.cleaned_data["title"]
    tracked.save(update_fields=["title", "updated"])
    audit.record(request.user, "retitled", tracked=tracked, detail=tracked.title or "(cleared)")
    if request.htmx:
        return _title(request, tracked, next_url)
    messages.success(request, "Title saved.")
    return HttpResponseRedirect(next_url, status=303)


def _title(
    request: HttpRequest, tracked: TrackedRequest, next_url: str, form: TitleForm | None = None
) -> HttpResponse:
    """The row's title cell, or its edit form when there is a ``form``."""
    context = {"tracked": tracked, "title_form": form, "next_url": next_url}
    partial = "title_cell" if form is None else "title_form"
    return render(request, f"tracker/dashboard.html#{partial}", context)
