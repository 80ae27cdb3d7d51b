from __future__ import annotations

import hashlib
import re
import time
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import connection
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.gzip import GZipMiddleware, re_accepts_gzip
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django.utils.safestring import mark_safe
from django.utils.text import compress_string
from django.views.decorators.http import condition, require_safe

from sonarweb.db import hot_cursor
from sonarweb.media.background import current_bundle
from sonarweb.media.lookup import has_inline_images, image_summary
from sonarweb.media.models import AnswerImage

from ..models import AnswerArchive, TrackedRequest, UpstreamStatus
from ..pagecache import PageCache
from ..polling import request_early_poll
from .access import get_request_for_user

MAX_BATCH = 100
# What the slug path converter accepts (secrets.token_urlsafe output); anything else,
# NUL bytes included, never reaches the database.
SLUG = re.compile(r"[-a-zA-Z0-9_]+")

# Where the archived answer goes in the rendered page; see _page_with_answer.
ANSWER_SLOT = mark_safe("<!--sonarweb:answer-->")
# Encoded answers kept per process; a 100k-word answer is about 3 MB.
ANSWER_CACHE_SIZE = 16
# Whole finished pages per member, per process: a repeat view costs no template work.
FINISHED_PAGES = PageCache(max_bytes=64 * 1024 * 1024, ttl_seconds=60)
HEAD_SQL = (
    "SELECT t.id, t.updated, t.status, a.rendered_at, a.sha256 FROM tracker_trackedrequest t "
    "LEFT JOIN tracker_answerarchive a ON a.tracked_id = t.id WHERE t.slug = %s"
)
# How long a browser's copy of a finished page stays valid through its ETag.
ETAG_SECONDS = 300


def _context(request: HttpRequest, tracked: TrackedRequest) -> dict[str, object]:
    context: dict[str, object] = {
        "tracked": tracked,
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
        "is_adder": request.user.pk == tracked.added_by_id,
    }
    if tracked.has_answer:
        rendered_at = (
            AnswerArchive.objects.filter(pk=tracked.pk)
            .values_list("rendered_at", flat=True)
            .first()
        )
        context["images"] = image_summary(tracked.pk)
        context["bundle"] = current_bundle(tracked.pk, rendered_at)
    return context


def _page_key(request: HttpRequest, head: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """What a finished page depends on; None when the page must be rendered afresh."""
    pk, updated, status, rendered_at = head[:4]
    if status != UpstreamStatus.COMPLETED or rendered_at is None:
        return None
    # Pending messages are shown once, on whichever page comes next.
    if len(messages.get_messages(request)):
        return None
    secret = request.META.get("CSRF_COOKIE", "")
    # The share panel spells out absolute URLs with this scheme and host. The secret stays
    # last: request_detail swaps it for the one the rendered page carries.
    return (pk, updated, rendered_at, request.user.pk, request.scheme, request.get_host(), secret)


def _head(request: HttpRequest, slug: str) -> tuple[Any, ...] | None:
    """The few columns that say whether and how a permalink changed; read once per request."""
    cached = getattr(request, "_sonarweb_head", None)
    if cached is None or cached[0] != slug:
        # Plain SQL: this runs on every view of every permalink, and compiling the ORM query
        # cost more than running it. The times stay as the driver returns them (text on
        # SQLite): they only serve as cache keys and to look the same row up again.
        with hot_cursor(connection) as cursor:
            cursor.execute(HEAD_SQL, [slug])
            head = cursor.fetchone()
        cached = (slug, head)
        request._sonarweb_head = cached  # type: ignore[attr-defined]
    return cached[1]


def finished_etag(request: HttpRequest, slug: str) -> str | None:
    """An ETag for a finished permalink: the answer's hash plus everything in ``_page_key``
    (the row's ``updated``, the rendering, the member, the CSRF secret the page's token comes
    from, the host), so a revisit of an unchanged page is a 304 with no body.

    A time bucket is part of it too: the page shows relative times ("3 hours ago") and whether
    share links have expired, so a copy is trusted for at most ETAG_SECONDS.
    """
    head = _head(request, slug)
    if head is None or not SLUG.fullmatch(slug):
        return None
    key = _page_key(request, head)
    if key is None or not key[-1]:
        # No CSRF secret yet: this view makes one, and the page would not match the tag.
        return None
    bucket = int(time.time() // ETAG_SECONDS)
    return hashlib.sha256(repr((*key, head[4], bucket)).encode()).hexdigest()[:40]


@require_safe
@condition(etag_func=finished_etag)
def request_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The permalink: the archived answer once finished, the live status until then.

    Nothing here calls upstream or renders an answer: both happen in the refresher. A
    finished page answers conditional GETs (``finished_etag``).
    """
    head = _head(request, slug)
    if head is None:
        raise Http404("No request has this permalink.")
    key = _page_key(request, head)
    if key is not None and (page := FINISHED_PAGES.get(key)) is not None:
        return _private(_cached_page(request, key, page))
    tracked = get_object_or_404(TrackedRequest.objects.select_related("added_by"), slug=slug)
    if tracked.is_polling:
        request_early_poll([tracked.pk])
    if tracked.has_answer and head[3] is not None:
        try:
            answer = _stored_answer(tracked.pk, tracked.slug, head[3])
        except LookupError:
            pass
        else:
            response = _page_with_answer(request, tracked, answer)
            if key is not None and response.status_code == 200:
                # Keyed by the CSRF secret the page now carries, which may be new.
                key = (*key[:-1], request.META.get("CSRF_COOKIE", ""))
                FINISHED_PAGES.put(key, response.content)
                return _private(_cached_page(request, key, response.content))
            return _private(response)
    return render(request, "tracker/request_detail.html", _context(request, tracked))


def _cached_page(request: HttpRequest, key: tuple[Any, ...], page: bytes) -> HttpResponse:
    """A cached page, gzipped once per cache entry rather than on every view.

    GZipMiddleware would compress each repeat view again, which for a large answer costs
    more than serving it. The compressed copy carries the middleware's BREACH mitigation
    (a random-length gzip header); keeping it fixed per entry leaks nothing, because the
    bytes are the same on every view and no request can change them without changing the
    key. The middleware leaves a response that already has a Content-Encoding alone.
    """
    if not re_accepts_gzip.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
        return HttpResponse(page)
    gz_key = (*key, "gzip")
    packed = FINISHED_PAGES.get(gz_key)
    if packed is None:
        packed = compress_string(page, max_random_bytes=GZipMiddleware.max_random_bytes)
        FINISHED_PAGES.put(gz_key, packed)
    response = HttpResponse(packed)
    response["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ("Accept-Encoding",))
    return response


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-cache"
    return response


@lru_cache(maxsize=ANSWER_CACHE_SIZE)
def _stored_answer(pk: int, slug: str, rendered_at: object) -> bytes:
    """The stored HTML of a completed answer, as UTF-8.

    Safe to keep: the HTML only changes with a new rendering (a new ``rendered_at``, which is
    part of the key), and the slug tells a row apart from a later one that reuses the primary
    key. The read is not filtered by ``rendered_at``: a rendering that lands between the
    caller's look at the row and this read (images archived a moment after completion) must
    give the newer HTML, not none.
    """
    html = (
        AnswerArchive.objects.filter(tracked_id=pk, tracked__slug=slug)
        .values_list("rendered_html", flat=True)
        .first()
    )
    if not html:
        raise LookupError(slug)  # not cached: lru_cache keeps only returned values
    return html.encode()


def answer_html(tracked: TrackedRequest) -> str:
    """The stored answer fragment, for the partials that swap it in ("" when there is none)."""
    if not tracked.has_answer:
        return ""
    html = (
        AnswerArchive.objects.filter(tracked_id=tracked.pk)
        .values_list("rendered_html", flat=True)
        .first()
    )
    return mark_safe(html or "")  # noqa: S308 - sanitized with nh3 when it was rendered


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
    """The badge partial that polls itself; once finished it also swaps the answer in.

    Reads the database only. A viewer's poll asks for an early upstream poll, which the
    refresher folds into the key's next list call.
    """
    tracked = get_request_for_user(request, slug)
    context = _context(request, tracked)
    if tracked.is_polling:
        request_early_poll([tracked.pk])
    else:
        context["answer_html"] = answer_html(tracked)
    return render(request, "tracker/request_detail.html#status_update", context)


@require_safe
def badges(request: HttpRequest) -> HttpResponse:
    """The dashboard's batched poll (see dashboard.badge_batch). Reads the database only."""
    from .dashboard import badge_batch

    return badge_batch(request)


# The gallery section of a rendered answer: generated by the renderer, holds no other section.
GALLERY = re.compile(r'<section class="answer-gallery" id="answer-gallery".*?</section>', re.S)


def _rendered_with_its_images(tracked_id: int) -> bool:
    """Whether the stored rendering is newer than the last image kept or given up."""
    latest = AnswerImage.objects.filter(tracked_id=tracked_id).aggregate(at=Max("fetched_at"))
    if latest["at"] is None:
        return True
    return AnswerArchive.objects.filter(
        tracked_id=tracked_id, rendered_at__gte=latest["at"]
    ).exists()


@require_safe
def answer_section(request: HttpRequest, slug: str) -> HttpResponse:
    """Polled while an answer's images are being archived: nothing (204) until they are.

    Then only what changed is swapped in, out of band: the gallery (its placeholders have the
    thumbnails' size, so nothing under it moves while someone reads) and the image counts.
    An answer with images inline in its text gets the whole answer section again.
    """
    tracked = get_request_for_user(request, slug)
    context = _context(request, tracked)
    images = context.get("images")
    if not tracked.has_answer or (images is not None and images.pending):
        return HttpResponse(status=204)
    if not _rendered_with_its_images(tracked.pk):
        # Kept, but the refresher has yet to render the answer again with them: swapping in
        # the old placeholders now would also end the polling that brings the pictures.
        return HttpResponse(status=204)
    html = answer_html(tracked)
    gallery = GALLERY.search(html)
    if has_inline_images(tracked.pk) or gallery is None:
        context.update({"answer_html": html, "oob": True})
        return render(request, "tracker/request_detail.html#answer", context)
    swap = gallery.group(0).replace("<section ", '<section hx-swap-oob="true" ', 1)
    context["gallery_oob"] = mark_safe(swap)  # noqa: S308 - a slice of the sanitized answer
    return render(request, "tracker/request_detail.html#images_arrived", context)
