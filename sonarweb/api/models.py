"""API tokens, and the idempotency records of research started through the API."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from sonarweb.tracker.models import TrackedRequest


class Scope(models.TextChoices):
    READ = "read", "Read: list, get and search"
    WRITE = "write", "Write: also start, track, cancel and share"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self, now: datetime | None = None) -> ApiTokenQuerySet:
        """Tokens that work (their member may still be deactivated: checked on each use)."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A member's bearer token for the API. The token itself is shown once and never stored:
    only its HMAC-SHA256 under ``SONARWEB_TOKEN_SECRET``, and a short prefix to find it by
    (and to tell tokens apart in lists), which is no secret."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The write calls of the current minute (sonarweb/api/throttling.py), shared by every
    # process through conditional UPDATEs.
    window_start = models.DateTimeField(null=True, blank=True)
    window_calls = models.PositiveIntegerField(default=0)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="api_token_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.shown})"

    def __repr__(self) -> str:
        return f"<ApiToken {self.shown} user={self.user_id} scope={self.scope}>"

    @property
    def shown(self) -> str:
        """How lists name the token: its prefix, which is no secret."""
        return f"sw_{self.prefix}…"

    @property
    def may_write(self) -> bool:
        return self.scope == Scope.WRITE

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired


class IdempotencyRecord(models.Model):
    """One ``Idempotency-Key`` a member's client sent with ``POST /api/v1/research``.

    Reserved (its own transaction, the unique pair) before anything else happens, so that of
    starts sent at once with one key exactly one goes on; the others wait for it and answer
    what it made. ``form_key`` is the UUID the start reserves its ``starting-`` row under
    (sonarweb/tracker/following/starting.py); ``completed_at`` is set, with ``tracked``, once
    the start has its row for good. A start that certainly started nothing deletes its record,
    so the key can be sent again.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    form_key = models.CharField(max_length=36, unique=True)
    tracked = models.ForeignKey(
        TrackedRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="api_idempotency_user_key")
        ]

    def __str__(self) -> str:
        return f"idempotency key of user {self.user_id}"
