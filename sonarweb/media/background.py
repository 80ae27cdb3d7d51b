"""The image archive's part of the refresher's work, between archiving and the pages.

When an answer is archived its images are only recorded (``record``), so the archive step
stays quick and the page shows placeholders saying they are being archived. Each refresher
pass then fetches the images of a few answers (``archive_due_images``), after which the
answer is rendered again with its local copies, and finally the answer's portable .zip is
built and stored (``build_due_bundles``). Every step is idempotent and resumable.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.core.files.base import ContentFile
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from sonarweb.answers.images import ImageCopy
from sonarweb.perplexity.payload import ANSWERED_STATUSES, Completion

from .archiving import MAX_ATTEMPTS, archive_images_for, record_refs
from .bundle import build_bundle, stored_bundle_images
from .integrity import bundle_file_missing
from .models import AnswerBundle, AnswerImage, ImageStatus
from .refs import image_refs
from .store import media_storage

log = logging.getLogger("sonarweb.media")

BUNDLE_PREFIX = "bundles"


def record(tracked_id: int, completion: Completion | None) -> int:
    """Note the images an answer names, to be fetched in the background; returns how many."""
    refs = image_refs(completion) if completion is not None else []
    if refs:
        record_refs(tracked_id, refs)
    return len(refs)


def image_copies(tracked_id: int) -> dict[str, ImageCopy]:
    """What the renderer shows for each image the answer names: the copy, or why not."""
    copies: dict[str, ImageCopy] = {}
    rows = AnswerImage.objects.filter(tracked_id=tracked_id).select_related("image")
    from .links import team_image_url

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


def answers_with_due_images(limit: int) -> list[int]:
    return list(
        AnswerImage.objects.filter(_due())
        .order_by("tracked_id")
        .values_list("tracked_id", flat=True)
        .distinct()[:limit]
    )


def archive_due_images(limit: int = 2, budget_seconds: float | None = None) -> list[int]:
    """Fetch the images of up to ``limit`` answers; returns the answers whose images changed
    (their pages must be rendered again)."""
    changed = []
    for tracked_id in answers_with_due_images(limit):
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


def stale_bundles(limit: int) -> list[int]:
    """Completed archives whose images are settled and whose bundle is missing or older
    than their rendering."""
    from sonarweb.tracker.models import AnswerArchive

    unsettled = AnswerImage.objects.filter(_due(), tracked_id=OuterRef("tracked_id"))
    current = AnswerBundle.objects.filter(
        tracked_id=OuterRef("tracked_id"), rendered_at=OuterRef("rendered_at")
    )
    return list(
        AnswerArchive.objects.filter(
            tracked__status__in=ANSWERED_STATUSES, rendered_at__isnull=False
        )
        .exclude(rendered_html="")
        .filter(~Exists(unsettled), ~Exists(current))
        .order_by("archived_at")
        .values_list("tracked_id", flat=True)[:limit]
    )


def build_and_store(tracked_id: int) -> AnswerBundle | None:
    """Build the answer's .zip from its current rendering and keep it in the media storage."""
    from sonarweb.tracker.models import AnswerArchive

    archive = AnswerArchive.objects.select_related("tracked").filter(pk=tracked_id).first()
    if archive is None or archive.rendered_at is None:
        return None
    tracked = archive.tracked
    facts = [("Request ID", tracked.request_id)]
    if tracked.model:
        facts.append(("Model", tracked.model))
    if tracked.completed_at:
        facts.append(("Completed", tracked.completed_at.strftime("%Y-%m-%d %H:%M UTC")))
    facts.append(("Content hash", f"sha256:{archive.sha256[:12]}"))
    title = tracked.question or tracked.title or tracked.request_id
    stored = AnswerImage.objects.filter(tracked_id=tracked_id, status=ImageStatus.STORED)
    expected = stored.exclude(image=None).count()
    images = stored_bundle_images(tracked_id)
    if len(images) < expected:
        return None  # a stored file was missing: built once the image is fetched again
    data = build_bundle(
        title=title,
        markdown=f"# {' '.join(title.split())}\n\n{archive.markdown}",
        raw_json=archive.raw_json,
        answer_html=archive.rendered_html,
        images=images,
        facts=facts,
        when=tracked.completed_at,
    )
    storage = media_storage()
    name = bundle_name(tracked_id, archive.rendered_at)
    if not storage.exists(name):
        name = storage.save(name, ContentFile(data))
    old = AnswerBundle.objects.filter(tracked_id=tracked_id).first()
    bundle, _ = AnswerBundle.objects.update_or_create(
        tracked_id=tracked_id,
        defaults={
            "name": name,
            "size": len(data),
            "rendered_at": archive.rendered_at,
            "built_at": timezone.now(),
        },
    )
    if old is not None and old.name != name:
        storage.delete(old.name)
    # The permalink links the bundle once it exists: a new ``updated`` retires cached pages.
    type(tracked).objects.filter(pk=tracked_id).update(updated=timezone.now())
    return bundle


def build_due_bundles(limit: int = 2) -> int:
    built = 0
    for tracked_id in stale_bundles(limit):
        try:
            if build_and_store(tracked_id) is not None:
                built += 1
        except Exception:
            log.exception("building the archive bundle of tracked=%s failed", tracked_id)
    return built
