"""Taking away what no answer needs any more: stored images and bundles of removed answers.

Removing a request deletes its image rows and its bundle row (they cascade), but not the
files in the media storage, and not the stored images: a picture is stored once however
many answers show it, so it can go only when no answer shows it any more. The refresher's
housekeeping calls ``sweep`` (at most once per ``SWEEP_EVERY``), and ``manage.py
sweep_media`` runs it at once; both are the tracker's
(``sonarweb/tracker/archive/images.py``), which says which answers still exist (``alive``):

- a stored image that no answer shows, stored at least ``GRACE`` ago, is deleted with its two
  renditions; a file that another stored image names as well is kept;
- a bundle file that no bundle row names is deleted once its request is gone, or once it is
  older than ``GRACE`` (a writer stopped between the file and its row).

Archiving may pick up a stored image the moment it is swept (the same picture found again
for another answer). ``archiving.attach`` locks the image's row while it records the use,
and the sweep deletes only rows it has locked and then found unused, so either the use is
recorded first and the image stays, or the image is gone first and ``attach`` says so
(``ImageGone``) and the archiver stores the picture again. Files go before the deletion of
their rows commits, and ``store.keep`` writes a new row's files again if they are missing
once the row exists, so a picture stored again at that moment gets its files back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .integrity import BUNDLE_PREFIX
from .models import AnswerBundle, AnswerImage, ArchivedImage, storage_name
from .store import media_storage

log = logging.getLogger("sonarweb.media")

GRACE = timedelta(hours=1)
SWEEP_EVERY = timedelta(hours=1)
# Stored images deleted per transaction: the rows stay locked while their files are deleted.
BATCH = 200
# Bundle files looked up per query.
BUNDLE_CHUNK = 500

_last_sweep: datetime | None = None

# Which of these answer ids still exist (their requests are the tracker's, a layer above).
Alive = Callable[[Iterable[int]], set[int]]


@dataclass
class Swept:
    images: int = 0
    files: int = 0
    bytes: int = 0
    bundles: int = 0
    errors: int = 0

    def add(self, other: Swept) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def __str__(self) -> str:
        return " ".join(f"{name}={value}" for name, value in asdict(self).items())


def _shown() -> Exists:
    return Exists(AnswerImage.objects.filter(image_id=OuterRef("pk")))


def _delete_file(storage: Storage, name: str, swept: Swept) -> bool:
    try:
        storage.delete(name)
    except Exception:
        # A file left behind is harmless (the next writer of the same bytes reuses it); a
        # row kept for a file that could not be deleted would hold the sweep up for ever.
        log.warning("could not delete %s from the media storage", name, exc_info=True)
        swept.errors += 1
        return False
    return True


def sweep_images(now: datetime | None = None) -> Swept:
    """Delete up to ``BATCH`` stored images no answer shows, with their files."""
    now = now or timezone.now()
    storage = media_storage()
    swept = Swept()
    with transaction.atomic():
        # Rows being attached right now are locked: skip them, they are about to be shown.
        candidates = list(
            ArchivedImage.objects.filter(~_shown(), created__lt=now - GRACE)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:BATCH]
        )
        if not candidates:
            return swept
        # Asked again now that they are locked: a use recorded while we waited counts.
        doomed = list(
            ArchivedImage.objects.filter(~_shown(), pk__in=candidates).values_list(
                "pk", "sha256", "size", "thumb_sha256", "thumb_size"
            )
        )
        ArchivedImage.objects.filter(pk__in=[pk for pk, *_ in doomed]).delete()
        sizes = {}
        for _, sha, size, thumb_sha, thumb_size in doomed:
            sizes[sha] = size
            sizes[thumb_sha] = thumb_size
        still_named = set()
        for full, thumb in ArchivedImage.objects.filter(
            Q(sha256__in=sizes) | Q(thumb_sha256__in=sizes)
        ).values_list("sha256", "thumb_sha256"):
            still_named.update((full, thumb))
        swept.images = len(doomed)
        for sha in sorted(set(sizes) - still_named):
            if _delete_file(storage, storage_name(sha), swept):
                swept.files += 1
                swept.bytes += sizes[sha]
    return swept


def _bundle_id(filename: str) -> int | None:
    head = filename.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def sweep_bundles(now: datetime | None = None, *, alive: Alive | None = None) -> Swept:
    """Delete the bundle files no bundle row names: their request is gone, or their writer
    stopped before recording them. Without ``alive`` every such file waits out ``GRACE``."""
    alive = alive or set
    now = now or timezone.now()
    storage = media_storage()
    swept = Swept()
    try:
        _, filenames = storage.listdir(BUNDLE_PREFIX)
    except FileNotFoundError:
        return swept
    filenames = sorted(f for f in filenames if f.endswith(".zip"))
    for start in range(0, len(filenames), BUNDLE_CHUNK):
        names = {f"{BUNDLE_PREFIX}/{f}": _bundle_id(f) for f in filenames[start:][:BUNDLE_CHUNK]}
        named = set(AnswerBundle.objects.filter(name__in=names).values_list("name", flat=True))
        existing = alive({pk for pk in names.values() if pk is not None})
        for name, tracked_id in names.items():
            if name in named:
                continue
            if tracked_id in existing:
                try:
                    if storage.get_modified_time(name) > now - GRACE:
                        continue  # being written, its row comes next
                except (FileNotFoundError, NotImplementedError):
                    continue
            size = 0
            with contextlib.suppress(OSError, NotImplementedError):
                size = storage.size(name)
            if _delete_file(storage, name, swept):
                swept.bundles += 1
                swept.files += 1
                swept.bytes += size
    return swept


def sweep(
    now: datetime | None = None, *, force: bool = False, alive: Alive | None = None
) -> Swept | None:
    """Both sweeps, all batches; None when the last sweep was less than ``SWEEP_EVERY`` ago.
    ``alive`` as for ``sweep_bundles``."""
    global _last_sweep
    now = now or timezone.now()
    if not force and _last_sweep is not None and now - _last_sweep < SWEEP_EVERY:
        return None
    _last_sweep = now
    total = Swept()
    while True:
        batch = sweep_images(now)
        total.add(batch)
        if batch.images < BATCH:
            break
    total.add(sweep_bundles(now, alive=alive))
    if total.files or total.images or total.errors:
        log.info("media sweep: %s", total)
    return total
