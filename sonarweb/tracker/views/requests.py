from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from ..archive import needs_render, render_stored
from ..models import TrackedRequest
from ..polling import refresh_if_due
from .access import get_request_for_user

MAX_BATCH = 100


def _context(request: HttpRequest, tracked: TrackedRequest) -> dict[str, object]:
    return {
        "tracked": tracked,
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
        "is_adder": request.user.pk == tracked.added_by_id,
    }


@require_safe
def request_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The permalink. Serves the archive when finished; otherwise polls if due."""
    tracked = get_request_for_user(request, slug)
    tracked = refresh_if_due(tracked)
    if needs_render(tracked):
        render_stored(tracked)
    return render(request, "tracker/request_detail.html", _context(request, tracked))


@require_safe
def request_status(request: HttpRequest, slug: str) -> HttpResponse:
    """The badge partial that polls itself; once finished it also swaps the answer in."""
    tracked = get_request_for_user(request, slug)
    tracked = refresh_if_due(tracked)
    if needs_render(tracked):
        render_stored(tracked)
    return render(request, "tracker/request_detail.html#status_update", _context(request, tracked))


@require_safe
def badges(request: HttpRequest) -> HttpResponse:
    """One batched poll for every unfinished row visible in a table.

    Answers each row's badge as an out-of-band swap and a new poller that names
    only the rows still unfinished, so the polling stops by itself.
    """
    slugs = request.GET.getlist("s")[:MAX_BATCH]
    rows = list(TrackedRequest.objects.listing().filter(slug__in=slugs))
    for tracked in rows:
        refresh_if_due(tracked)
    context = {
        "rows": rows,
        "polling_slugs": [r.slug for r in rows if r.is_polling],
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
    }
    return render(request, "tracker/dashboard.html#badge_batch", context)
