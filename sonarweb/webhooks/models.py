"""Webhook endpoints, the outbox of deliveries to them, and each attempt's outcome."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from sonarweb.tracker import crypto


class Event(models.TextChoices):
    """What an endpoint may ask for: the status changes that end a request."""

    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    INCOMPLETE = "incomplete", "Incomplete"
    RETIRED = "retired", "Retired"


class Format(models.TextChoices):
    STANDARD = "standard", "Standard Webhooks (signed JSON)"
    SLACK = "slack", "Slack (an incoming-webhook message)"


class Endpoint(models.Model):
    """Where staff want to hear about finished requests.

    The URL is kept encrypted (a Slack or chat URL is itself the credential) and pages show
    only ``url_shown``: the whole URL for a Standard Webhooks endpoint, the host and last four
    characters for a Slack one. The signing secret is encrypted too and shown once.
    """

    name = models.CharField(max_length=100)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.STANDARD)
    url_encrypted = models.TextField()
    url_shown = models.CharField(max_length=300)
    secret_encrypted = models.TextField(blank=True)
    events = models.JSONField(default=list)
    # Staff's opt-in to loopback and private addresses (a chat server on the LAN), which
    # SONARWEB_WEBHOOKS_ALLOW_PRIVATE=0 forbids. Link-local (cloud metadata) stays refused.
    allow_private = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # Disabled by sonarweb (410, or failing again and again), not by staff: pages say so
    # until staff enable it again or delete it.
    disabled_automatically = models.BooleanField(default=False)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        # Never the URL: it may be the credential.
        return f"<Endpoint {self.pk} {self.format} {self.url_shown}>"

    @property
    def event_labels(self) -> list[str]:
        labels = dict(Event.choices)
        return [str(labels[e]) for e in Event.values if e in self.events]

    def set_url(self, url: str) -> None:
        self.url_encrypted = crypto.encrypt(url)
        if self.format == Format.SLACK:
            # A Slack URL is a secret: pages show only its host and its last four characters.
            url = f"{urlsplit(url).hostname or '?'}/…{url[-4:]}"
        self.url_shown = url[:300]

    def url(self) -> str:
        return crypto.decrypt(self.url_encrypted)

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = crypto.encrypt(secret)

    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Waiting"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up"


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def due(self, now: datetime) -> DeliveryQuerySet:
        """Waiting, due, for an enabled endpoint. A claim pushes ``next_attempt_at`` past
        the call's deadline, so a row whose sender died is due again once that passes."""
        return self.filter(
            state=DeliveryState.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )


class Delivery(models.Model):
    """One event for one endpoint: a row of the outbox, written in the transaction of the
    status change, then sent (and retried) by the refresher."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    tracked = models.ForeignKey(
        "tracker.TrackedRequest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    event = models.CharField(max_length=16, choices=Event.choices)
    # webhook-id: the same for every attempt and for a redelivery, so receivers can
    # recognise a message they already handled.
    message_id = models.CharField(max_length=64)
    # The event as JSON, fixed when it happened; every attempt sends these bytes.
    payload = models.TextField()
    created = models.DateTimeField(default=timezone.now)
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # None once there is nothing left to do; a claim moves it forward.
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claimed_by = models.CharField(max_length=32, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="webhook_delivery_due",
            ),
            models.Index(fields=["endpoint", "-created"], name="webhook_delivery_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id}"

    @property
    def event_type(self) -> str:
        return f"request.{self.event}"


class Attempt(models.Model):
    """What one try of a delivery got: the response code, or why there was none."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
