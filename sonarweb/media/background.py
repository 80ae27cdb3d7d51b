"""The image archive's part of the refresher's work, between archiving and the pages.

When an answer is archived its images are only recorded (``record``), so the archive step
stays quick and the page shows placeholders saying they are being archived. Each refresher
pass then fetches the images of a few answers (``archive_due_images``), after which the
answer is rendered again with its local copies, and finally the answer's portable .zip is
built and stored (``store_bundle``, called by the tracker for the answers it finds due:
``sonarweb/tracker/archive/images.py``). Every step is idempotent and resumable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db.models import Q, QuerySet
from django.utils import timezone

from sonarweb.answers.images import ImageCopy
from sonarweb.perplexity.payload import Completion

from .archiving import MAX_ATTEMPTS, archive_images_for, record_refs
from .bundle import build_bundle, stored_bundle_images
from .integrity import BUNDLE_PREFIX, bundle_file_missing
from .links import team_image_url
from .models import AnswerBundle, AnswerImage, ImageStatus
from .refs import image_refs
from .store import media_storage

log = logging.getLogger("sonarweb.media")


def record(tracked_id: int, completion: Completion | None) -> int:
    """Note the images an answer names, to be fetched in the background; returns how many."""
    refs = image_refs(completion) if completion is not None else []
    record_refs(tracked_id, refs)
    return len(refs)


def image_copies(tracked_id: int) -> dict[str, ImageCopy]:
    """What the renderer shows for each image the answer names: the copy, or why not."""
    copies: dict[str, ImageCopy] = {}
    rows = AnswerImage.objects.filter(tracked_id=tracked_id).select_related("image")
    for row in rows:
        image = row.image if row.status == ImageStatus.STORED else None
        if image is None:
            reason = row.reason if row.status == ImageStatus.FAILED else ""
            copies[row.url] = ImageCopy(reason=reason, width=row.width, height=row.height)
            continue
        copies[row.url] = ImageCopy(
            full_url=team_image_url(image.sha256),
            thumb_url=team_image_url(image.thumb_sha256),
            width=image.width,
            height=image.height,
            thumb_width=image.thumb_width,
            thumb_height=image.thumb_height,
        )
    return copies


def _due() -> Q:
    retryable = Q(status=ImageStatus.FAILED, retryable=True, attempts__lt=MAX_ATTEMPTS)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now())
    return (Q(status=ImageStatus.PENDING) | retryable) & free


def archive_due_images(limit: int = 2, budget_seconds: float | None = None) -> list[int]:
    """Fetch the images of up to ``limit`` answers; returns the answers whose images changed
    (their pages must be rendered again)."""
    due = AnswerImage.objects.filter(_due()).order_by("tracked_id")
    changed = []
    for tracked_id in due.values_list("tracked_id", flat=True).distinct()[:limit]:
        report = archive_images_for(tracked_id, budget_seconds=budget_seconds)
        if report.stored or report.failed:
            changed.append(tracked_id)
        log.info(
            "images of tracked=%s: stored=%d failed=%d left=%d",
            tracked_id,
            report.stored,
            report.failed,
            report.left,
        )
    return changed


def retry_failed(tracked_id: int) -> int:
    """Staff asked: every failed image of the answer is tried again on the next pass."""
    return AnswerImage.objects.filter(tracked_id=tracked_id, status=ImageStatus.FAILED).update(
        status=ImageStatus.PENDING, attempts=0, reason="", retryable=False, claimed_until=None
    )


def bundle_name(tracked_id: int, rendered_at: datetime) -> str:
    stamp = rendered_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{BUNDLE_PREFIX}/{tracked_id}-{stamp}.zip"


def current_bundle(tracked_id: int, rendered_at: datetime | None) -> AnswerBundle | None:
    """The bundle of this rendering; None while there is none, or (on a local disk, where
    asking costs a ``stat``) when its file is gone: it is then built again."""
    if rendered_at is None:
        return None
    bundle = AnswerBundle.objects.filter(tracked_id=tracked_id, rendered_at=rendered_at).first()
    if bundle is not None and bundle_file_missing(bundle):
        return None
    return bundle


def unsettled_images(tracked_id: Any) -> QuerySet[AnswerImage]:
    """The answer's images still to be fetched; ``tracked_id`` may be an ``OuterRef``."""
    return AnswerImage.objects.filter(_due(), tracked_id=tracked_id)


def bundles_of(tracked_id: Any, rendered_at: Any) -> QuerySet[AnswerBundle]:
    """The answer's bundle of that rendering; either may be an ``OuterRef``."""
    return AnswerBundle.objects.filter(tracked_id=tracked_id, rendered_at=rendered_at)


def store_bundle(
    tracked_id: int,
    rendered_at: datetime,
    *,
    title: str,
    markdown: str,
    raw_json: str,
    answer_html: str,
    facts: Sequence[tuple[str, str]] = (),
    when: datetime | None = None,
) -> AnswerBundle | None:
    """Build the answer's .zip from this rendering of it and its stored images, and keep it
    in the media storage (replacing an older one). None while a stored image's file is
    missing: it is built once the image is fetched again.

    The answer's text comes from its archive, which is the tracker's: the tracker calls this
    (``sonarweb/tracker/archive/images.py``) and marks its row changed afterwards."""
    stored = AnswerImage.objects.filter(tracked_id=tracked_id, status=ImageStatus.STORED)
    expected = stored.exclude(image=None).count()
    images = stored_bundle_images(tracked_id)
    if len(images) < expected:
        return None
    data = build_bundle(
        title=title,
        markdown=markdown,
        raw_json=raw_json,
        answer_html=answer_html,
        images=images,
        facts=facts,
        when=when,
    )
    storage = media_storage()
    name = bundle_name(tracked_id, rendered_at)
    if not storage.exists(name):
        name = storage.save(name, ContentFile(data))
    old = AnswerBundle.objects.filter(tracked_id=tracked_id).first()
    bundle, _ = AnswerBundle.objects.update_or_create(
        tracked_id=tracked_id,
        defaults={
            "name": name,
            "size": len(data),
            "rendered_at": rendered_at,
            "built_at": timezone.now(),
        },
    )
    if old is not None and old.name != name:
        storage.delete(old.name)
    return bundle
