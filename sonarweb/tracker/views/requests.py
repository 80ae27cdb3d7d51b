from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.safestring import mark_safe
from django.views.decorators.http import condition, require_safe

from sonarweb.accounts.views.access import may_manage
from sonarweb.answers import sections
from sonarweb.answers.sanitize import sanitize
from sonarweb.media.background import current_bundle, image_copies
from sonarweb.media.lookup import has_inline_images, image_summary
from sonarweb.media.models import AnswerImage
from sonarweb.perplexity.documents import loads_document
from sonarweb.perplexity.payload import ANSWERED_STATUSES, PayloadError

from ..archive.store import stored_job
from ..following.polling import request_early_poll
from ..models import AnswerArchive, AppState, TrackedRequest, UpstreamStatus
from .access import get_request_for_user
from .cancel import refusal_code

# What the slug path converter accepts (secrets.token_urlsafe output); anything else,
# NUL bytes included, never reaches the database.
SLUG = re.compile(r"[-a-zA-Z0-9_]+")

# How long a browser's copy of a finished page stays valid through its ETag.
ETAG_SECONDS = 300


# States in which the app has stopped asking upstream for good: a Sonar job asked about after
# the Sonar API's retirement, and a start that may or may not have happened.
STOPPED_STATES = (AppState.RETIRED, AppState.UNCONFIRMED)
# Why an answer was cut off, in words (``incomplete_details.reason``); another reason is
# shown as upstream spelled it.
CUT_OFF_REASONS = {
    "max_output_tokens": "the output limit (max_output_tokens)",
    "max_tool_calls": "the limit on tool calls (max_tool_calls)",
    "content_filter": "the content filter (content_filter)",
    "cancelled": "a cancellation (cancelled)",
}
REASON_CHARS = 80


def watching(tracked: TrackedRequest) -> bool:
    """Whether a page keeps polling this row's badge: while the refresher still asks upstream
    about it, and never once it has finished (in any of the finished statuses) or the app has
    stopped asking about it (RETIRED, UNCONFIRMED)."""
    return tracked.is_polling and not tracked.is_finished and tracked.state not in STOPPED_STATES


def may_cancel(user: Any, tracked: TrackedRequest) -> bool:
    """Whether this member is offered Cancel: on a running Agent run nobody has asked to
    cancel yet, for the member who added it (their key owns the run) and for staff."""
    return may_manage(user, tracked) and not refusal_code(tracked)


def cut_off_sentence(tracked: TrackedRequest) -> str:
    """Why an INCOMPLETE answer stops early: the archived document's
    ``incomplete_details.reason``."""
    text = (
        AnswerArchive.objects.filter(tracked_id=tracked.pk)
        .values_list("raw_json", flat=True)
        .first()
    )
    try:
        reason = loads_document(text).incomplete_reason.strip() if text else ""
    except PayloadError:
        reason = ""
    if not reason:
        return "Perplexity did not say why the answer was cut off."
    words = CUT_OFF_REASONS.get(reason)
    if words is None:
        return f"The answer was cut off; Perplexity gave the reason “{reason[:REASON_CHARS]}”."
    return f"The answer was cut off by {words}."


def _context(request: HttpRequest, tracked: TrackedRequest) -> dict[str, object]:
    context: dict[str, object] = {
        "tracked": tracked,
        "poll_seconds": settings.SONARWEB_BADGE_POLL_SECONDS,
        "is_adder": request.user.pk == tracked.added_by_id,
        "polling": watching(tracked),
        "may_cancel": may_cancel(request.user, tracked),
    }
    if tracked.status == UpstreamStatus.INCOMPLETE:
        context["cut_off"] = cut_off_sentence(tracked)
    if tracked.has_answer:
        rendered_at = (
            AnswerArchive.objects.filter(pk=tracked.pk)
            .values_list("rendered_at", flat=True)
            .first()
        )
        context["images"] = image_summary(tracked.pk)
        context["bundle"] = current_bundle(tracked.pk, rendered_at)
    return context


def finished_etag(request: HttpRequest, slug: str) -> str | None:
    """An ETag for a finished permalink, so that a revisit of an unchanged page is a 304 with
    no body; None (no conditional GET) while the page may still change by itself.

    It changes with everything the page shows: the archived answer (its hash) and its
    rendering, the row (``updated``: a new title, share link or audit event), the member and
    the CSRF secret their page's token comes from, and the scheme and host the share panel
    spells its links with. A time bucket is part of it too: the page shows relative times
    ("3 hours ago") and whether share links have expired, so a copy is trusted for at most
    ETAG_SECONDS.
    """
    if not SLUG.fullmatch(slug):
        return None
    head = (
        TrackedRequest.objects.filter(slug=slug)
        .values_list("pk", "updated", "status", "archive__rendered_at", "archive__sha256")
        .first()
    )
    if head is None or head[2] not in ANSWERED_STATUSES or head[3] is None:
        return None
    # Pending messages are shown once, on whichever page comes next.
    if len(messages.get_messages(request)):
        return None
    secret = request.META.get("CSRF_COOKIE", "")
    if not secret:
        # No CSRF secret yet: this view makes one, and the page would not match the tag.
        return None
    bucket = int(time.time() // ETAG_SECONDS)
    key = (*head, request.user.pk, request.scheme, request.get_host(), secret, bucket)
    return hashlib.sha256(repr(key).encode()).hexdigest()[:40]


@require_safe
@condition(etag_func=finished_etag)
def request_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The permalink: the archived answer once finished, the live status until then.

    Nothing here calls upstream or renders an answer: both happen in the refresher. A
    finished page answers conditional GETs (``finished_etag``); GZipMiddleware compresses it.
    """
    tracked = get_request_for_user(request, slug)
    if tracked.is_polling:
        request_early_poll([tracked.pk])
    context = _context(request, tracked)
    context["answer_html"] = answer_html(tracked)
    response = render(request, "tracker/request_detail.html", context)
    # Browsers keep the page but ask again each time (the ETag makes that a 304).
    patch_cache_control(response, private=True, no_cache=True)
    return response


def answer_html(tracked: TrackedRequest) -> str:
    """The stored answer fragment (completed, incomplete or cancelled; "" when there is none)."""
    if not tracked.has_answer:
        return ""
    html = (
        AnswerArchive.objects.filter(tracked_id=tracked.pk)
        .values_list("rendered_html", flat=True)
        .first()
    )
    return mark_safe(html or "")  # noqa: S308 - sanitized with nh3 when it was rendered


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
    if not context["polling"]:
        context["answer_html"] = answer_html(tracked)
    # The page shows Cancel outside the polled block; it goes once it is no longer offered.
    context["drop_cancel"] = request.GET.get("cancel") == "offered" and not context["may_cancel"]
    return render(request, "tracker/request_detail.html#status_update", context)


def gallery_inside(tracked_id: int) -> str:
    """What goes inside the answer's gallery now that its images are kept, rendered from the
    archived document with the archive's copies, and sanitized as the whole answer was."""
    archive = AnswerArchive.objects.filter(tracked_id=tracked_id).only("raw_json").first()
    job = stored_job(archive) if archive is not None else None
    if job is None or job.response is None or not job.response.images:
        return ""
    html = sections.gallery(job.response.images, image_copies(tracked_id), inner=True)
    return sanitize(html)


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
    kept = AnswerImage.objects.filter(tracked=tracked).aggregate(at=Max("fetched_at"))["at"]
    archive = AnswerArchive.objects.filter(tracked=tracked)
    if kept is not None and not archive.filter(rendered_at__gte=kept).exists():
        # Kept, but the refresher has yet to render the answer again with them (the stored
        # rendering is older than the last image kept or given up): swapping in the old
        # placeholders now would also end the polling that brings the pictures.
        return HttpResponse(status=204)
    inside = "" if has_inline_images(tracked.pk) else gallery_inside(tracked.pk)
    if not inside:
        context.update({"answer_html": answer_html(tracked), "oob": True})
        return render(request, "tracker/request_detail.html#answer", context)
    context["gallery_inside"] = mark_safe(inside)  # noqa: S308 - sanitized with nh3 just now
    return render(request, "tracker/request_detail.html#images_arrived", context)
