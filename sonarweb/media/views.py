"""Archived images, streamed from the media storage.

Members may fetch any image the team archived. A public share link may fetch only the
images of the answer it shares, under its own token, and only while the link is active: that
view is the tracker's, which owns the links (``sonarweb/tracker/views/sharing.py``), and
streams with ``stream_image`` once ``shows_image`` says the answer shows it.
The bytes under a name never change (the name is their hash), so browsers may keep them for
a year without asking again; ``private`` keeps shared caches out, so a revoked link stops
serving as soon as it is revoked. A file gone from the storage (a restore without the media
folder) is a 404, and the image is marked to be fetched again, so the page says so.
"""

from __future__ import annotations

import logging

from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_safe

from .conf import RENDITION_MIME
from .integrity import file_missing
from .models import AnswerImage, ArchivedImage, ImageStatus
from .store import open_rendition

log = logging.getLogger("sonarweb.media")

CACHE_CONTROL = "private, max-age=31536000, immutable"


def stream_image(request: HttpRequest, sha256: str) -> HttpResponse:
    """The rendition named ``sha256`` (a 304 when the browser has it); 404 when its file is
    gone, which is then noticed."""
    etag = f'"{sha256}"'
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
    else:
        try:
            file = open_rendition(sha256)
        except (FileNotFoundError, OSError):
            log.warning("archived image %s is missing from the media storage", sha256)
            # Its uses are marked to be fetched again; that never makes it more than a 404.
            try:
                file_missing(sha256)
            except Exception:
                log.exception("could not mark the missing image %s", sha256)
            raise Http404("The image is missing from the archive.") from None
        response = FileResponse(file, content_type=RENDITION_MIME)
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    return response


@require_safe
def team_image(request: HttpRequest, sha256: str) -> HttpResponse:
    """Any image the team archived, for signed-in members (the login middleware checks)."""
    if not ArchivedImage.objects.filter(Q(sha256=sha256) | Q(thumb_sha256=sha256)).exists():
        raise Http404("No such image.")
    return stream_image(request, sha256)


def shows_image(tracked_id: int, sha256: str) -> bool:
    """Whether the answer shows the image (full rendition or thumbnail) from its archive."""
    return AnswerImage.objects.filter(
        Q(image__sha256=sha256) | Q(image__thumb_sha256=sha256),
        tracked_id=tracked_id,
        status=ImageStatus.STORED,
    ).exists()
