from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from sonarweb.answers.render import RENDER_VERSION

from ..archive import needs_render, render_stored
from ..models import TrackedRequest, UpstreamStatus
from ..pagecache import PageCache
from ..polling import refresh_if_due
from .access import get_request_for_user

MAX_BATCH = 100
# Rows one /badges/ request may poll upstream for, each a call of up to the read timeout.
# The rest answer their stored state: the poller is back in seconds, and the background
# refresher covers rows nobody watches.
MAX_REFRESH_PER_BATCH = 3
# What the slug path converter accepts (secrets.token_urlsafe output); anything else,
# NUL bytes included, never reaches the database.
SLUG = re.compile(r"[-a-zA-Z0-9_]+")

# Where the archived answer goes in the rendered page; see _page_with_answer.
ANSWER_SLOT = mark_safe("<!--sonarweb:answer-->")
# Encoded answers kept per process; a 100k-word answer is about 3 MB.
ANSWER_CACHE_SIZE = 16
# Whole finished pages per member, per process: a repeat view costs no template work.
FINISHED_PAGES = PageCache(max_bytes=64 * 1024 * 1024, ttl_seconds=60)


def _context(request: HttpRequest, tracked: TrackedRequest) -> dict[str, object]:
    return {
        "tracked": tracked,
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
        "is_adder": request.user.pk == tracked.added_by_id,
    }


def _page_key(request: HttpRequest, head: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """What a finished page depends on; None when the page must be rendered afresh."""
    pk, updated, status, version = head
    if status != UpstreamStatus.COMPLETED or version != RENDER_VERSION:
        return None
    # Pending messages are shown once, on whichever page comes next.
    if len(messages.get_messages(request)):
        return None
    secret = request.META.get("CSRF_COOKIE", "")
    # The share panel spells out absolute URLs with this scheme and host. The secret stays
    # last: request_detail swaps it for the one the rendered page carries.
    return (pk, updated, version, request.user.pk, request.scheme, request.get_host(), secret)


@require_safe
def request_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The permalink. Serves the archive when finished; otherwise polls if due."""
    head = (
        TrackedRequest.objects.filter(slug=slug)
        .values_list("pk", "updated", "status", "render_version")
        .first()
    )
    if head is None:
        raise Http404("No request has this permalink.")
    key = _page_key(request, head)
    if key is not None and (page := FINISHED_PAGES.get(key)) is not None:
        return _private(HttpResponse(page))
    tracked = get_object_or_404(
        # The stored HTML comes from _stored_answer, not with the row.
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
            response = _page_with_answer(request, tracked, answer)
            if key is not None and response.status_code == 200:
                # Keyed by the CSRF secret the page now carries, which may be new.
                FINISHED_PAGES.put(
                    (*key[:-1], request.META.get("CSRF_COOKIE", "")), response.content
                )
            return _private(response)
    tracked = refresh_if_due(tracked)
    if needs_render(tracked):
        render_stored(tracked)
    return render(request, "tracker/request_detail.html", _context(request, tracked))


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-cache"
    return response


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
    slugs = [s for s in request.GET.getlist("s")[:MAX_BATCH] if SLUG.fullmatch(s)]
    rows = list(TrackedRequest.objects.listing().filter(slug__in=slugs))
    now = timezone.now()
    # The longest-waiting rows first, so every row gets its turn across batches.
    due = sorted(
        (r for r in rows if r.next_poll_at is not None and r.next_poll_at <= now),
        key=lambda r: r.next_poll_at,
    )
    for tracked in due[:MAX_REFRESH_PER_BATCH]:
        refresh_if_due(tracked)
    context = {
        "rows": rows,
        "polling_slugs": [r.slug for r in rows if r.is_polling],
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
    }
    return render(request, "tracker/dashboard.html#badge_batch", context)
