"""Stored images and bundles whose files are gone: noticed, then fetched or built again.

A restore without the media folder (or a lost disk) leaves rows naming files the media
storage no longer has, and the permalink would go on saying "Images: 8 archived". A stored
image whose full rendition or thumbnail is missing is *forgotten*: every answer's use of it
becomes a retryable failure with ``MISSING_REASON`` (so the page says so, and the refresher,
the staff retry button and ``manage.py archive_images`` fetch it again), and its
``ArchivedImage`` row is deleted, so the next fetch stores the picture and its files anew
instead of finding the broken row. A bundle whose .zip is missing loses its row, and the
refresher builds it again.

Who notices:

- ``check_files``: the whole storage against the database, by listing it (one listing per
  folder, not a request per file: cheap on a disk, bearable on S3). ``manage.py check_media``
  runs it at once; the refresher's chore ``check_missing`` runs it when the refresher starts
  (which is when a restore has just happened), then every ``CHECK_EVERY``.
- ``file_missing``: the image views, when the file of a rendition they were asked for is gone.
- ``verify_answer_images`` and ``bundle_file_missing``: the permalink, on a local disk only,
  where a ``stat`` per file costs microseconds (an S3 ``HEAD`` per image would cost seconds).

Forgetting takes the image's row lock, as the sweep does (``cleanup``), so an answer being
given the same image at that moment either is marked with the others or finds the row gone
(``archiving.ImageGone``) and stores the picture again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.files.storage import FileSystemStorage, Storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import AnswerBundle, AnswerImage, ArchivedImage, ImageStatus, storage_name
from .signals import answers_changed
from .store import media_storage

log = logging.getLogger("sonarweb.media")

MISSING_REASON = "The archived file is missing (restored without the media folder?)"
CHECK_EVERY = timedelta(hours=6)
# Rows changed per statement (SQLite limits the parameters of one query).
CHUNK = 500
IMAGE_FOLDER = "images"
# The folder of the answers' bundles (``background.store_bundle``).
BUNDLE_PREFIX = "bundles"


@dataclass
class MediaCheck:
    images: int = 0  # stored images checked
    bundles: int = 0  # bundles checked
    missing_images: int = 0  # stored images with a file missing, now forgotten
    marked: int = 0  # answers' images marked to be fetched again
    missing_bundles: int = 0  # bundles with their file missing, to be built again
    answers: set[int] = field(default_factory=set)  # answers whose page changed

    def __str__(self) -> str:
        return (
            f"images={self.images} bundles={self.bundles} "
            f"missing_images={self.missing_images} marked={self.marked} "
            f"missing_bundles={self.missing_bundles} answers={len(self.answers)}"
        )


def is_local(storage: Storage) -> bool:
    """Whether asking for a file costs a ``stat`` (a disk), not a request (a bucket)."""
    return isinstance(storage, FileSystemStorage)


def _chunks(items: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _touch(tracked_ids: Iterable[int], now: datetime) -> None:
    """The permalinks' ETags are made with their rows' ``updated``: the tracker, which owns
    those rows, changes it when told (``signals.answers_changed``)."""
    ids = set(tracked_ids)
    if ids:
        answers_changed.send(sender=MediaCheck, tracked_ids=ids, at=now)


def forget_images(pks: Iterable[int], *, now: datetime | None = None) -> tuple[int, set[int]]:
    """Forget these stored images (their files are missing): every use becomes a retryable
    failure saying why, and the rows go. Returns (uses marked, answers concerned)."""
    now = now or timezone.now()
    pks = sorted(set(pks))
    marked, answers = 0, set()
    for chunk in _chunks(pks):
        with transaction.atomic():
            locked = list(
                ArchivedImage.objects.select_for_update()
                .filter(pk__in=chunk)
                .values_list("pk", flat=True)
            )
            uses = AnswerImage.objects.filter(image_id__in=locked)
            concerned = set(uses.values_list("tracked_id", flat=True))
            marked += uses.update(
                status=ImageStatus.FAILED,
                image=None,
                reason=MISSING_REASON,
                retryable=True,
                attempts=0,
                claimed_until=None,
            )
            ArchivedImage.objects.filter(pk__in=locked).delete()
            _touch(concerned, now)
        answers |= concerned
    if marked:
        log.warning(
            "%d stored image(s) had a file missing from the media storage: %d use(s) in %d "
            "answer(s) will be fetched again",
            len(pks),
            marked,
            len(answers),
        )
    return marked, answers


def _gone(storage: Storage, name: str) -> bool:
    """Whether the storage says the file is not there; False when it cannot tell."""
    try:
        return not storage.exists(name)
    except Exception:
        log.warning("could not ask the media storage about %s", name, exc_info=True)
        return False


def file_missing(sha256: str) -> int:
    """A rendition named ``sha256`` could not be opened: forget the stored images it belongs
    to if the file is really gone (not when the storage merely failed). Returns how many uses
    were marked."""
    if not _gone(media_storage(), storage_name(sha256)):
        return 0
    named = ArchivedImage.objects.filter(Q(sha256=sha256) | Q(thumb_sha256=sha256))
    return forget_images(named.values_list("pk", flat=True))[0]


def verify_answer_images(tracked_id: int) -> int:
    """On a local disk: forget the answer's stored images whose files are gone (a ``stat``
    per file). Elsewhere nothing: the views and the periodic check notice instead. Returns
    how many uses were marked."""
    storage = media_storage()
    if not is_local(storage):
        return 0
    rows = ArchivedImage.objects.filter(
        uses__tracked_id=tracked_id, uses__status=ImageStatus.STORED
    ).values_list("pk", "sha256", "thumb_sha256")
    broken = [
        pk
        for pk, full, thumb in rows.distinct()
        if not storage.exists(storage_name(full)) or not storage.exists(storage_name(thumb))
    ]
    return forget_images(broken)[0]


def drop_bundle(bundle: AnswerBundle, *, now: datetime | None = None) -> bool:
    """Forget a bundle whose file is missing, so that the refresher builds it again."""
    deleted, _ = AnswerBundle.objects.filter(
        tracked_id=bundle.tracked_id, name=bundle.name
    ).delete()
    if deleted:
        _touch([bundle.tracked_id], now or timezone.now())
        log.warning("bundle %s is missing from the media storage; it is built again", bundle.name)
    return bool(deleted)


def bundle_file_missing(bundle: AnswerBundle) -> bool:
    """On a local disk: whether the bundle's file is gone (its row is then dropped)."""
    storage = media_storage()
    if not is_local(storage) or storage.exists(bundle.name):
        return False
    drop_bundle(bundle)
    return True


def _listed(storage: Storage, folder: str, depth: int) -> set[str]:
    """The names of the files under ``folder``, ``depth`` levels of folders down."""
    try:
        folders, files = storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return set()
    names = {f"{folder}/{name}" for name in files}
    if depth > 0:
        for sub in folders:
            names |= _listed(storage, f"{folder}/{sub}", depth - 1)
    return names


def check_images(storage: Storage, now: datetime, report: MediaCheck, *, dry_run: bool) -> None:
    # The rows first, then the listing: files are written before the rows that name them.
    rows = list(ArchivedImage.objects.values_list("pk", "sha256", "thumb_sha256"))
    report.images = len(rows)
    present = _listed(storage, IMAGE_FOLDER, depth=1)
    # A name the listing missed is asked about once more (a file written meanwhile).
    unlisted = {
        name
        for _, full, thumb in rows
        for name in (storage_name(full), storage_name(thumb))
        if name not in present
    }
    gone = {name for name in unlisted if _gone(storage, name)}
    broken = [
        pk for pk, full, thumb in rows if storage_name(full) in gone or storage_name(thumb) in gone
    ]
    report.missing_images = len(broken)
    if dry_run:
        for chunk in _chunks(broken):
            uses = AnswerImage.objects.filter(image_id__in=chunk)
            report.answers |= set(uses.values_list("tracked_id", flat=True))
        return
    marked, answers = forget_images(broken, now=now)
    report.marked += marked
    report.answers |= answers


def check_bundles(storage: Storage, now: datetime, report: MediaCheck, *, dry_run: bool) -> None:
    rows = list(AnswerBundle.objects.all())
    report.bundles = len(rows)
    present = _listed(storage, BUNDLE_PREFIX, depth=0)
    for bundle in rows:
        if bundle.name in present or not _gone(storage, bundle.name):
            continue
        report.missing_bundles += 1
        report.answers.add(bundle.tracked_id)
        if not dry_run:
            drop_bundle(bundle, now=now)


def check_files(*, now: datetime | None = None, dry_run: bool = False) -> MediaCheck:
    """Every stored image and bundle against the files in the media storage; see the module
    docstring. ``dry_run`` counts without changing anything."""
    storage = media_storage()
    now = now or timezone.now()
    report = MediaCheck()
    check_images(storage, now, report, dry_run=dry_run)
    check_bundles(storage, now, report, dry_run=dry_run)
    if report.missing_images or report.missing_bundles:
        log.warning("media check: %s", report)
    return report


def check_missing(now: datetime) -> int:
    """Mark stored images and bundles whose files are missing to be fetched or built again.

    The other way round from the sweep: rows whose files are gone (a restore without the
    media folder). Returns how many images and bundles were missing.
    """
    report = check_files(now=now)
    return report.missing_images + report.missing_bundles
