from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from ..forms import TrackForm
from ..models import TrackedRequest
from .access import key_of

DASHBOARD_ROWS = 50


def _dashboard(request: HttpRequest, form: TrackForm, status: int = 200) -> HttpResponse:
    rows = list(TrackedRequest.objects.listing()[:DASHBOARD_ROWS])
    key = key_of(request)
    context = {
        "form": form,
        "rows": rows,
        "key": key,
        "polling_slugs": [r.slug for r in rows if r.is_polling],
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
        messages.info(request, "That request is already tracked; here it is.")
        return HttpResponseRedirect(existing.get_absolute_url(), status=303)
    if key_of(request) is None:
        form.add_error(None, "Add your Perplexity API key in Settings before tracking requests.")
        return _dashboard(request, form, status=422)
    try:
        tracked = TrackedRequest.objects.create(request_id=request_id, added_by=request.user)
    except IntegrityError:
        # Someone else tracked it between our check and our insert.
        tracked = TrackedRequest.objects.get(request_id=request_id)
    return HttpResponseRedirect(tracked.get_absolute_url(), status=303)
