"""Keeping renditions in the media storage, named by their content.

Files are written before the row that names them, and checked again once the row exists (the
sweep of unused images may have deleted the same bytes in between), so a row never points at
a missing file; a file without a row (a crash in between) is harmless and reused by the next
writer.
"""

from __future__ import annotations

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, transaction

from .decode import Decoded, Rendition
from .models import ArchivedImage, storage_name

STORAGE = "media"


def media_storage() -> Storage:
    return storages[STORAGE]


def save_rendition(rendition: Rendition, storage: Storage | None = None) -> str:
    storage = storage or media_storage()
    name = storage_name(rendition.sha256)
    if storage.exists(name):
        return name
    saved = storage.save(name, ContentFile(rendition.data))
    if saved != name:
        # A storage that renames instead of overwriting, and a writer that raced us to the
        # name: the bytes under ``name`` are the same, so drop our renamed copy.
        storage.delete(saved)
    return name


def keep(decoded: Decoded, *, source_sha256: str, source_size: int) -> ArchivedImage:
    """The ArchivedImage for these renditions, storing them if they are new."""
    existing = ArchivedImage.objects.filter(sha256=decoded.full.sha256).first()
    if existing is not None:
        return existing
    save_rendition(decoded.full)
    save_rendition(decoded.thumb)
    try:
        with transaction.atomic():
            created = ArchivedImage.objects.create(
                sha256=decoded.full.sha256,
                width=decoded.full.width,
                height=decoded.full.height,
                size=len(decoded.full.data),
                thumb_sha256=decoded.thumb.sha256,
                thumb_width=decoded.thumb.width,
                thumb_height=decoded.thumb.height,
                thumb_size=len(decoded.thumb.data),
                source_sha256=source_sha256,
                source_size=source_size,
                source_format=decoded.source_format,
                source_width=decoded.width,
                source_height=decoded.height,
            )
    except IntegrityError:
        # Another process stored the same picture meanwhile.
        return ArchivedImage.objects.get(sha256=decoded.full.sha256)
    # The files were found above, but they may have been an unused image's that the sweep
    # (``cleanup``) deleted before this row existed: written again if so.
    save_rendition(decoded.full)
    save_rendition(decoded.thumb)
    return created


def open_rendition(sha256: str) -> File:
    """The stored file of a rendition, open for reading; FileNotFoundError if missing."""
    return media_storage().open(storage_name(sha256), "rb")
