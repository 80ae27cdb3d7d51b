"""The image archive: stored images, and which answer shows which image.

``ArchivedImage`` is one source image kept as two WebP renditions (full and thumbnail), each
stored under the SHA-256 of its bytes, so the same picture is stored once however many
answers and URLs name it. ``AnswerImage`` is one image URL of one answer, with what the
answer says about it and how archiving it went.
"""

from __future__ import annotations

import hashlib

from django.db import models
from django.utils import timezone

from .conf import RENDITION_EXTENSION, RENDITION_MIME


def storage_name(sha256: str) -> str:
    """Where a rendition lives in the media storage; two hex digits of fan-out per folder."""
    return f"images/{sha256[:2]}/{sha256}.{RENDITION_EXTENSION}"


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


class ArchivedImage(models.Model):
    sha256 = models.CharField(max_length=64, unique=True)  # of the full rendition's bytes
    mime = models.CharField(max_length=32, default=RENDITION_MIME)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()  # bytes
    thumb_sha256 = models.CharField(max_length=64, db_index=True)
    thumb_width = models.PositiveIntegerField()
    thumb_height = models.PositiveIntegerField()
    thumb_size = models.PositiveIntegerField()
    # The bytes as fetched: the same file under another URL is recognised before decoding.
    source_sha256 = models.CharField(max_length=64, db_index=True)
    source_size = models.PositiveIntegerField()
    source_format = models.CharField(max_length=16, blank=True)
    source_width = models.PositiveIntegerField(default=0)
    source_height = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.width}x{self.height}"

    @property
    def name(self) -> str:
        return storage_name(self.sha256)

    @property
    def thumb_name(self) -> str:
        return storage_name(self.thumb_sha256)


class ImageStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be archived"
    STORED = "stored", "Archived"
    FAILED = "failed", "Could not be archived"


class ImageKind(models.TextChoices):
    GALLERY = "gallery", "Gallery"
    INLINE = "inline", "In the text"


class AnswerImageQuerySet(models.QuerySet["AnswerImage"]):
    def stored(self) -> AnswerImageQuerySet:
        return self.filter(status=ImageStatus.STORED)

    def failed(self) -> AnswerImageQuerySet:
        return self.filter(status=ImageStatus.FAILED)


class AnswerImage(models.Model):
    tracked = models.ForeignKey(
        "tracker.TrackedRequest", on_delete=models.CASCADE, related_name="answer_images"
    )
    url = models.TextField()
    # Unique per answer through the hash: URLs can outgrow what a btree index accepts.
    url_hash = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=8, choices=ImageKind.choices, default=ImageKind.GALLERY)
    position = models.PositiveIntegerField(default=0)
    # What the answer says about the image, for the placeholder when it is not archived.
    caption = models.TextField(blank=True)
    origin_url = models.TextField(blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)

    status = models.CharField(
        max_length=8, choices=ImageStatus.choices, default=ImageStatus.PENDING, db_index=True
    )
    reason = models.CharField(max_length=300, blank=True)
    retryable = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    fetched_at = models.DateTimeField(null=True, blank=True)
    # One process at a time fetches a row; a crashed one's claim runs out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    image = models.ForeignKey(
        ArchivedImage, on_delete=models.PROTECT, null=True, blank=True, related_name="uses"
    )

    objects = AnswerImageQuerySet.as_manager()

    class Meta:
        ordering = ["tracked", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tracked", "url_hash"], name="answer_image_once"),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.status})"


class AnswerBundle(models.Model):
    """The portable .zip of one answer, built once per rendering and kept in the storage."""

    tracked = models.OneToOneField(
        "tracker.TrackedRequest", on_delete=models.CASCADE, primary_key=True, related_name="bundle"
    )
    name = models.CharField(max_length=255)  # in the media storage
    size = models.PositiveBigIntegerField(default=0)
    # The rendering it was built from: a newer one (new renderer, images archived) rebuilds it.
    rendered_at = models.DateTimeField()
    built_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name
