from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from sonarweb.answers.render import RENDER_VERSION

from ..archive import needs_render, render_stored
from ..models import TrackedRequest, UpstreamStatus
from ..polling import refresh_if_due
from .access import get_request_for_user

MAX_BATCH = 100

# Where the archived answer goes in the rendered page; see _page_with_answer.
ANSWER_SLOT = mark_safe("<!--sonarweb:answer-->")
# Encoded answers kept per process; a 100k-word answer is about 3 MB.
ANSWER_CACHE_SIZE = 16


def _context(request: HttpRequest, tracked: TrackedRequest) -> dict[str, object]:
    return {
        "tracked": tracked,
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
        "is_adder": request.user.pk == tracked.added_by_id,
    }


@require_safe
def request_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The permalink. Serves the archive when finished; otherwise polls if due."""
    tracked = get_object_or_404(
        # The same row get_request_for_user gives, without the stored HTML: an answer that is
        # rendered and current comes from _stored_answer instead.
        TrackedRequest.objects.select_related("added_by").defer(
            "rendered_html", "answer_text", "raw_json"
        ),
        slug=slug,
    )
    if tracked.status == UpstreamStatus.COMPLETED and tracked.render_version == RENDER_VERSION:
        try:
            answer = _stored_answer(tracked.pk, tracked.slug, RENDER_VERSION)
        except LookupError:
            pass
        else:
            return _page_with_answer(request, tracked, answer)
    tracked = refresh_if_due(tracked)
    if needs_render(tracked):
        render_stored(tracked)
    return render(request, "tracker/request_detail.html", _context(request, tracked))


@lru_cache(maxsize=ANSWER_CACHE_SIZE)
def _stored_answer(pk: int, slug: str, version: int) -> bytes:
    """The stored HTML of a completed answer, as UTF-8.

    Safe to keep: an archived answer's HTML only changes along with its render_version, and
    the slug tells a row apart from a later one that reuses the primary key.
    """
    html = (
        TrackedRequest.objects.filter(pk=pk, slug=slug, render_version=version)
        .values_list("rendered_html", flat=True)
        .first()
    )
    if not html:
        raise LookupError(slug)  # not cached: lru_cache keeps only returned values
    return html.encode()


def _page_with_answer(request: HttpRequest, tracked: TrackedRequest, answer: bytes) -> HttpResponse:
    """The page rendered around a slot, with the stored answer's bytes joined in once.

    An answer runs to megabytes; passed through the template it would be copied at every
    level of nesting and then decoded and encoded again, which made this page several times
    slower than it needs to be.
    """
    context = {**_context(request, tracked), "answer_slot": ANSWER_SLOT}
    page = render_to_string("tracker/request_detail.html", context, request)
    head, slot, tail = page.partition(ANSWER_SLOT)
    if not slot:
        return render(request, "tracker/request_detail.html", _context(request, tracked))
    return HttpResponse([head.encode(), answer, tail.encode()])


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
