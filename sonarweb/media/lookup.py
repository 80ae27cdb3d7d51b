"""What the pages need to know about an answer's archived images.

``image_summary`` counts them for the permalink (on a local disk it first checks that the
stored files are there: a ``stat`` each, see ``integrity``); ``disk_usage`` totals the
archive. What the renderer shows of each is ``background.image_copies``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Sum

from .integrity import verify_answer_images
from .models import AnswerImage, ArchivedImage, ImageKind, ImageStatus


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
