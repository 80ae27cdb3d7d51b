"""Archived images, streamed from the media storage.

Members may fetch any image the team archived. A public share link may fetch only the
images of the answer it shares, under its own token, and only while the link is active.
The bytes under a name never change (the name is their hash), so browsers may keep them for
a year without asking again; ``private`` keeps shared caches out, so a revoked link stops
serving as soon as it is revoked. A file gone from the storage (a restore without the media
folder) is a 404, and the image is marked to be fetched again, so the page says so.
"""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_safe

from sonarweb.perplexity.payload import ANSWERED_STATUSES
from sonarweb.tracker.models import ShareLink

from .conf import RENDITION_MIME
from .integrity import file_missing
from .models import AnswerImage, ArchivedImage, ImageStatus
from .store import open_rendition

log = logging.getLogger("sonarweb.media")

CACHE_CONTROL = "private, max-age=31536000, immutable"


def _named(sha256: str) -> Q:
    return Q(sha256=sha256) | Q(thumb_sha256=sha256)


def _stream(request: HttpRequest, sha256: str) -> HttpResponse:
    etag = f'"{sha256}"'
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
    else:
        try:
            file = open_rendition(sha256)
        except (FileNotFoundError, OSError):
            log.warning("archived image %s is missing from the media storage", sha256)
            _notice_missing(sha256)
            raise Http404("The image is missing from the archive.") from None
        response = FileResponse(file, content_type=RENDITION_MIME)
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    return response


def _notice_missing(sha256: str) -> None:
    """Mark the answers' uses of the image to be fetched again; never more than a 404."""
    try:
        file_missing(sha256)
    except Exception:
        log.exception("could not mark the missing image %s", sha256)


@require_safe
def team_image(request: HttpRequest, sha256: str) -> HttpResponse:
    """Any image the team archived, for signed-in members (the login middleware checks)."""
    if not ArchivedImage.objects.filter(_named(sha256)).exists():
        raise Http404("No such image.")
    return _stream(request, sha256)


@login_not_required
@require_safe
def shared_image(request: HttpRequest, token: str, sha256: str) -> HttpResponse:
    """An image of the answer behind an active share link; 404 for anything else."""
    tracked_id = (
        ShareLink.objects.active()
        .filter(token=token, tracked__status__in=ANSWERED_STATUSES)
        .values_list("tracked_id", flat=True)
        .first()
    )
    if tracked_id is None:
        raise Http404("No such shared answer.")
    belongs = AnswerImage.objects.filter(
        Q(image__sha256=sha256) | Q(image__thumb_sha256=sha256),
        tracked_id=tracked_id,
        status=ImageStatus.STORED,
    )
    if not belongs.exists():
        raise Http404("No such image in this shared answer.")
    response = _stream(request, sha256)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response
