from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from sonarweb.accounts import audit, handover

from ..forms import MODEL_CHOICES, STATUS_FILTER_CHOICES, DashboardFilterForm, TitleForm, TrackForm
from ..models import AppState, TrackedRequest, UpstreamStatus
from .access import key_of

ROWS_PER_PAGE = 25
STATUSES = [value for value, _ in STATUS_FILTER_CHOICES if value]


def _status_q(status: str) -> Q:
    """Rows whose badge shows ``status`` (see TrackedRequest.badge_status)."""
    finished = [UpstreamStatus.COMPLETED, UpstreamStatus.FAILED]
    if status in finished:
        return Q(status=status)
    if status in UpstreamStatus.values:
        return Q(status=status, state=AppState.PENDING)
    if status == AppState.PENDING:
        return Q(status="", state=AppState.PENDING)
    if status in AppState.values:
        return Q(state=status) & ~Q(status__in=finished)
    return Q(pk__in=[])


def _filter_form(request: HttpRequest) -> DashboardFilterForm:
    members = list(
        get_user_model()
        .objects.filter(tracked_requests__isnull=False)
        .order_by("username")
        .values_list("username", flat=True)
        .distinct()
    )
    used = TrackedRequest.objects.exclude(model="").values_list("model", flat=True).distinct()
    models = sorted({value for value, _ in MODEL_CHOICES} | set(used))
    return DashboardFilterForm(request.GET or None, members=members, models=models)


def _filtered(form: DashboardFilterForm) -> tuple[QuerySet[TrackedRequest], str]:
    """Rows matching every filter but status, and the status asked for."""
    rows = TrackedRequest.objects.all()
    # An unknown value in one field (a stale link) leaves only that field out of cleaned_data.
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    if data.get("member"):
        rows = rows.filter(added_by__username=data["member"])
    if data.get("model"):
        rows = rows.filter(model=data["model"])
    if query := data.get("q", "").strip():
        rows = rows.filter(
            Q(question__icontains=query)
            | Q(title__icontains=query)
            | Q(archive__markdown__icontains=query)
            | Q(request_id__iexact=query)
        )
    return rows, data.get("status", "")


def _dashboard(request: HttpRequest, form: TrackForm, status: int = 200) -> HttpResponse:
    filters = _filter_form(request)
    rows, wanted = _filtered(filters)
    counts = rows.aggregate(
        n_all=Count("pk"), **{f"n_{s}": Count("pk", filter=_status_q(s)) for s in STATUSES}
    )
    if wanted:
        rows = rows.filter(_status_q(wanted))
    # The answer columns can be megabytes per row; a table needs none of them.
    page = Paginator(rows.listing(), ROWS_PER_PAGE).get_page(request.GET.get("page"))
    key = key_of(request)
    back = request.GET.copy()
    back.pop("edit", None)
    context = {
        "form": form,
        "filters": filters,
        "filtering": any(request.GET.get(n) for n in ("q", "status", "member", "model")),
        "status_counts": [
            (value, label, counts[f"n_{value}"]) for value, label in STATUS_FILTER_CHOICES if value
        ],
        "total_count": counts["n_all"],
        "page_obj": page,
        "rows": page.object_list,
        "key": key,
        "editing": request.GET.get("edit", ""),
        "next_url": f"/?{back.urlencode()}" if back else "/",
        "polling_slugs": [r.slug for r in page.object_list if r.is_polling],
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
    }
    return render(request, "tracker/dashboard.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def dashboard(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return track(request)
    return _dashboard(request, TrackForm())


@require_POST
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
    return "/"


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
            return _title_cell(request, tracked, next_url)
        form = TitleForm(initial={"title": tracked.title})
        return _title_form(request, tracked, form, next_url)
    form = TitleForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            # 200, not 422: htmx swaps only successful answers, and the errors must show.
            return _title_form(request, tracked, form, next_url)
        messages.error(request, " ".join(form.errors.get("title", ["That title was not saved."])))
        return HttpResponseRedirect(next_url, status=303)
    tracked.title = form.cleaned_data["title"]
    tracked.save(update_fields=["title", "updated"])
    audit.record(request.user, "retitled", tracked=tracked, detail=tracked.title or "(cleared)")
    if request.htmx:
        return _title_cell(request, tracked, next_url)
    messages.success(request, "Title saved.")
    return HttpResponseRedirect(next_url, status=303)


def _title_form(
    request: HttpRequest, tracked: TrackedRequest, form: TitleForm, next_url: str
) -> HttpResponse:
    context = {"tracked": tracked, "title_form": form, "next_url": next_url}
    return render(request, "tracker/dashboard.html#title_form", context)


def _title_cell(request: HttpRequest, tracked: TrackedRequest, next_url: str) -> HttpResponse:
    context = {"tracked": tracked, "next_url": next_url}
    return render(request, "tracker/dashboard.html#title_cell", context)
