"""What the renderer and the pages need to know about an answer's archived images.

``local_images(tracked_id)`` maps each image URL the answer names (as ``refs.image_refs``
lists it, i.e. the ``src`` the renderer would emit) to its local copy or the reason there is
none; ``image_summary`` counts them for the permalink (on a local disk it first checks that
the stored files are there: a ``stat`` each, see ``integrity``); ``disk_usage`` totals the
archive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Sum

from .integrity import verify_answer_images
from .links import team_image_url
from .models import AnswerImage, ArchivedImage, ImageKind, ImageStatus


@dataclass(frozen=True)
class LocalImage:
    url: str  # as the answer names it
    status: str  # ImageStatus
    caption: str = ""
    origin_url: str = ""
    reason: str = ""  # why it is not archived
    full_url: str = ""  # team address of the 1600 px rendition; "" unless stored
    thumb_url: str = ""
    # Of the full rendition when stored, else what the answer says (for placeholders).
    width: int | None = None
    height: int | None = None
    thumb_width: int | None = None
    thumb_height: int | None = None


def local_images(tracked_id: int) -> dict[str, LocalImage]:
    rows = AnswerImage.objects.filter(tracked_id=tracked_id).select_related("image")
    found = {}
    for row in rows.order_by("position"):
        image = row.image if row.status == ImageStatus.STORED else None
        found[row.url] = LocalImage(
            url=row.url,
            status=row.status,
            caption=row.caption,
            origin_url=row.origin_url,
            reason=row.reason,
            full_url=team_image_url(image.sha256) if image else "",
            thumb_url=team_image_url(image.thumb_sha256) if image else "",
            width=image.width if image else row.width,
            height=image.height if image else row.height,
            thumb_width=image.thumb_width if image else None,
            thumb_height=image.thumb_height if image else None,
        )
    return found


@dataclass(frozen=True)
class ImageSummary:
    stored: int = 0
    failed: int = 0
    pending: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)


def image_summary(tracked_id: int) -> ImageSummary:
    # "N archived" only for files that are there: missing ones become retryable failures.
    verify_answer_images(tracked_id)
    rows = AnswerImage.objects.filter(tracked_id=tracked_id)
    counts = dict(rows.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    failures = list(rows.failed().order_by("position").values_list("url", "reason"))
    return ImageSummary(
        stored=counts.get(ImageStatus.STORED, 0),
        failed=counts.get(ImageStatus.FAILED, 0),
        pending=counts.get(ImageStatus.PENDING, 0),
        failures=failures,
    )


@dataclass(frozen=True)
class DiskUsage:
    images: int
    stored_bytes: int  # full renditions and thumbnails
    source_bytes: int  # what was fetched


def disk_usage() -> DiskUsage:
    totals = ArchivedImage.objects.aggregate(
        images=Count("pk"), full=Sum("size"), thumbs=Sum("thumb_size"), source=Sum("source_size")
    )
    return DiskUsage(
        images=totals["images"] or 0,
        stored_bytes=(totals["full"] or 0) + (totals["thumbs"] or 0),
        source_bytes=totals["source"] or 0,
    )


def has_inline_images(tracked_id: int) -> bool:
    """Whether the answer's text shows images itself (not only in its gallery)."""
    return AnswerImage.objects.filter(tracked_id=tracked_id, kind=ImageKind.INLINE).exists()
