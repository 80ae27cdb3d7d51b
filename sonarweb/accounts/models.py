"""Invitations to the team, and the audit trail of what members did to shared things.

The trail names requests and public links, which are the tracker's (a layer above this app):
by the string references "tracker.TrackedRequest" and "tracker.ShareLink", never an import.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def new_invite_token() -> str:
    # 32 random bytes: 256 bits. Only its SHA-256 is stored.
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def open(self, now: datetime | None = None) -> InvitationQuerySet:
        """Invitations that can still be accepted."""
        return self.filter(
            used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now or timezone.now()
        )


class Invitation(models.Model):
    """A one-time link that lets one person create an account on the team.

    The token itself is shown once to the staff member who made it and never stored:
    a copy of the database is no way in.
    """

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    email = models.EmailField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"invitation {self.pk} ({self.email or 'no email'})"


class AuditAction(models.TextChoices):
    LINK_CREATED = "link_created", "created a public link"
    LINK_REVOKED = "link_revoked", "revoked a public link"
    LINK_EXPIRED = "link_expired", "let a public link expire"
    RETITLED = "retitled", "retitled the request"
    IMPORTED = "imported", "imported the request"
    REMOVED = "removed", "removed the request"
    CLAIMED = "claimed", "took the request over with their key"
    CANCELLED = "cancelled", "asked Perplexity to cancel the run"
    # API tokens (sonarweb/api): the detail names the token, never its secret.
    TOKEN_CREATED = "token_created", "created an API token"
    TOKEN_REVOKED = "token_revoked", "revoked an API token"
    TOKEN_FIRST_USED = "token_first_used", "used an API token for the first time"


LINK_ACTIONS = [AuditAction.LINK_CREATED, AuditAction.LINK_REVOKED, AuditAction.LINK_EXPIRED]


class AuditEvent(models.Model):
    """Who did what to a request or a public link, and when. Kept for a year.

    The actor's name and the request id are kept as text too, so that removing a member
    or a request leaves its history readable.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    tracked = models.ForeignKey(
        "tracker.TrackedRequest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    request_id = models.CharField(max_length=128, blank=True)
    share_link = models.ForeignKey(
        "tracker.ShareLink",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tracked", "-at"], name="audit_tracked_at")]
        constraints = [
            # A link expires once: refreshers running side by side cannot record it twice.
            models.UniqueConstraint(
                fields=["share_link"],
                condition=Q(action="link_expired"),
                name="audit_link_expires_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.actor_name or 'sonarweb'} {self.get_action_display()} {self.request_id}"


class SignInAllowance(models.Model):
    """How many password checks one username or one address has had in its throttling window
    (sonarweb/accounts/signin.py). One row per scope, "user:<username>" or "addr:<address>".

    ``used`` counts reservations: one is taken, in a single conditional UPDATE, before any
    password is checked. ``last_at`` is when the window was opened or last extended by a
    failure; the row counts until the lockout window has passed since then.
    """

    scope = models.CharField(max_length=200, unique=True)
    used = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.scope}: {self.used} since {self.last_at:%Y-%m-%d %H:%M:%S}"
