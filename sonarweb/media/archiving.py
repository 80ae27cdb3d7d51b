"""Archive one answer's images: the function the refresher calls once an answer is stored.

``archive_images_for(tracked, refs)`` records a row per image URL (once: calling it again
adds nothing), then fetches the rows still to do: pending ones, and failed ones whose failure
may pass (network, timeouts, busy hosts) until they have had ``MAX_ATTEMPTS``. Each outcome
is saved as it happens, so an interrupted pass resumes where it stopped. The whole answer
has a time budget; rows it leaves undone stay pending for the next pass.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone

from . import conf
from .decode import reencode
from .errors import ImageFailure, SweptMeanwhile
from .fetch import ImageFetcher
from .models import AnswerImage, ArchivedImage, ImageStatus, url_hash
from .refs import ImageRef
from .store import keep

log = logging.getLogger("sonarweb.media")

# Retryable failures (network, timeouts, 5xx) are tried this many times in all by the
# background passes; ``retry_failed=True`` (staff, the command's --retry-failed) tries any.
MAX_ATTEMPTS = 3
# A claimed row is left alone by other processes this long (longer than any one fetch).
CLAIM = timedelta(minutes=5)
# Below this much time left in the answer's budget, starting another fetch is pointless.
MIN_FETCH_SECONDS = 1.0

# An answer: its tracked request (the tracker's model, a layer above) or that row's id.
Answer = Model | int


def answer_id(tracked: Answer) -> int:
    return tracked if isinstance(tracked, int) else tracked.pk


@dataclass
class ArchiveReport:
    stored: int = 0  # newly stored in this call
    failed: int = 0  # failed in this call
    left: int = 0  # still to do when the budget ran out, or claimed by another process
    already: int = 0  # stored before this call
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)


def record_refs(tracked: Answer, refs: Sequence[ImageRef]) -> None:
    """One row per image URL of the answer, created once."""
    tracked_id = answer_id(tracked)
    rows = [
        AnswerImage(
            tracked_id=tracked_id,
            url=ref.url,
            url_hash=url_hash(ref.url),
            kind=ref.kind,
            position=position,
            caption=ref.caption[:2000],
            origin_url=ref.origin_url,
            width=ref.width if ref.width and ref.width > 0 else None,
            height=ref.height if ref.height and ref.height > 0 else None,
        )
        for position, ref in enumerate(refs)
    ]
    AnswerImage.objects.bulk_create(rows, ignore_conflicts=True)


def to_fetch(tracked_id: int, *, retry_failed: bool = False) -> QuerySet[AnswerImage]:
    due = Q(status=ImageStatus.PENDING)
    if retry_failed:
        due |= Q(status=ImageStatus.FAILED)
    else:
        due |= Q(status=ImageStatus.FAILED, retryable=True, attempts__lt=MAX_ATTEMPTS)
    return AnswerImage.objects.filter(due, tracked_id=tracked_id).order_by("position")


def _claim(row: AnswerImage) -> bool:
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    due = (ImageStatus.PENDING, ImageStatus.FAILED)
    rows = AnswerImage.objects.filter(free, pk=row.pk, status__in=due)
    claimed = rows.update(claimed_until=now + CLAIM)
    return claimed == 1


class ImageGone(Exception):
    """The stored image was swept (no answer showed it) before this use was recorded."""


def _done() -> dict[str, Any]:
    return {"attempts": F("attempts") + 1, "fetched_at": timezone.now(), "claimed_until": None}


def _fail(row: AnswerImage, failure: ImageFailure) -> None:
    AnswerImage.objects.filter(pk=row.pk).update(
        status=ImageStatus.FAILED,
        image=None,
        reason=failure.reason[:300],
        retryable=failure.retryable,
        **_done(),
    )


def attach(row: AnswerImage, image: ArchivedImage) -> None:
    """Record that ``row`` shows ``image``, or raise ``ImageGone``.

    The image's row is locked until the use is recorded, so the sweep of unused images
    (``cleanup.sweep_images``) either sees the use or has deleted the image first; on SQLite
    the transaction itself (begun IMMEDIATE) keeps the sweep out."""
    with transaction.atomic():
        locked = ArchivedImage.objects.select_for_update().filter(pk=image.pk)
        if not list(locked.values_list("pk", flat=True)):
            raise ImageGone(image.sha256)
        AnswerImage.objects.filter(pk=row.pk).update(
            status=ImageStatus.STORED, image=image, reason="", retryable=False, **_done()
        )


def archive_and_attach(row: AnswerImage, fetcher: ImageFetcher, *, ends: float) -> ArchivedImage:
    """``archive_one``, then ``attach``; once more if the image was swept in between (the
    picture is then fetched and stored again)."""
    for _ in range(2):
        image = archive_one(row, fetcher, timeout=max(ends - time.monotonic(), MIN_FETCH_SECONDS))
        try:
            attach(row, image)
        except ImageGone:
            log.info("stored image %s was swept meanwhile; storing it again", image.sha256[:12])
            continue
        return image
    raise SweptMeanwhile("The stored copy was removed while archiving; trying again later.")


def archive_one(row: AnswerImage, fetcher: ImageFetcher, *, timeout: float) -> ArchivedImage:
    """Fetch, check, re-encode and store one image; an ImageFailure says why not."""
    # Another answer archived the same URL: no need to fetch it again.
    other = (
        AnswerImage.objects.filter(url_hash=row.url_hash, status=ImageStatus.STORED)
        .exclude(image=None)
        .select_related("image")
        .first()
    )
    if other is not None:
        return other.image
    fetched = fetcher.fetch(row.url, timeout=timeout)
    source_sha = hashlib.sha256(fetched.body).hexdigest()
    same_file = ArchivedImage.objects.filter(source_sha256=source_sha).first()
    if same_file is not None:
        return same_file
    decoded = reencode(fetched.body, max_pixels=int(conf.setting("SONARWEB_IMAGE_MAX_PIXELS")))
    return keep(decoded, source_sha256=source_sha, source_size=len(fetched.body))


def archive_images_for(
    tracked: Answer,
    refs: Sequence[ImageRef] | None = None,
    *,
    budget_seconds: float | None = None,
    retry_failed: bool = False,
    fetcher: ImageFetcher | None = None,
) -> ArchiveReport:
    """Archive the images of one answer; see the module docstring.

    ``refs`` (from ``refs.image_refs(completion)``) are recorded first; None works on the
    rows already recorded. ``fetcher`` defaults to one built from settings.
    """
    tracked_id = answer_id(tracked)
    if refs:
        record_refs(tracked_id, refs)
    budget = budget_seconds or float(conf.setting("SONARWEB_IMAGES_ANSWER_SECONDS"))
    ends = time.monotonic() + budget
    report = ArchiveReport(
        already=AnswerImage.objects.filter(tracked_id=tracked_id).stored().count()
    )
    rows = list(to_fetch(tracked_id, retry_failed=retry_failed))
    with ImageFetcher() if fetcher is None else nullcontext(fetcher) as active:
        for index, row in enumerate(rows):
            left = ends - time.monotonic()
            if left < MIN_FETCH_SECONDS:
                report.left += len(rows) - index
                break
            if not _claim(row):
                report.left += 1
                continue
            try:
                archive_and_attach(row, active, ends=ends)
            except ImageFailure as exc:
                failure = exc
                log.info("image not archived tracked=%s url=%s: %s", tracked_id, row.url, failure)
            except DatabaseError:
                raise
            except Exception:
                # A bug, or a decoder crashing on a hostile file: one image must not stop the
                # answer's others, and the row must not be retried for ever.
                log.exception("archiving image failed tracked=%s url=%s", tracked_id, row.url)
                failure = ImageFailure("An unexpected error stopped archiving this image.")
            else:
                report.stored += 1
                continue
            _fail(row, failure)
            report.failed += 1
            report.failures.append((row.url, failure.reason))
    return report
