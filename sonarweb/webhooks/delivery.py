"""Sending the outbox: the refresher's ``webhooks`` chore (``deliver_due``).

A due delivery is claimed with one conditional UPDATE that moves its ``next_attempt_at`` past
the attempt's deadline, as the refresher claims rows to poll: exactly one process sends it,
and a delivery whose sender died is due again once that claim runs out, so none is lost.
Each attempt is one POST within a 15 s total deadline (``sender``).

Retries back off over about a day (``BACKOFF``); a 429's Retry-After is honoured; a 410 stops
the delivery and disables the endpoint; ``DISABLE_AFTER`` failures in a row disable it too.
Staff are told on /team/webhooks/ and the team page, and by mail when mail is set up.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from sonarweb.media.network import Resolver
from sonarweb.tracker.crypto import DecryptionError

from . import conf, payload, sender, signing
from .models import Attempt, Delivery, DeliveryState, Endpoint, Format

log = logging.getLogger("sonarweb.webhooks")

# Seconds to wait after the 1st, 2nd, ... failed attempt: eight attempts over about 22 hours.
BACKOFF = (60, 5 * 60, 15 * 60, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
MAX_ATTEMPTS = len(BACKOFF) + 1
# Failed attempts in a row (over all of an endpoint's deliveries) that disable it.
DISABLE_AFTER = 8
# A claim outlasts the attempt's deadline by this much.
CLAIM_MARGIN_SECONDS = 15.0
# One run of the chore sends at most this many, for at most this long: the other chores
# wait for it, and what is left is due on the next pass.
PER_RUN = 20
RUN_SECONDS = 30.0
# Finished deliveries are forgotten after this long (checked at most every PRUNE_EVERY).
KEEP = timedelta(days=30)
PRUNE_EVERY = timedelta(hours=1)
PRUNE_BATCH = 500
# How a name is resolved; tests map made-up names to the addresses they need.
resolver: Resolver | None = None

_last_prune: datetime | None = None


def claim_seconds() -> float:
    return sender.TOTAL_SECONDS + CLAIM_MARGIN_SECONDS


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    holder: str


def claim_next(now: datetime) -> Claimed | None:
    """Take the next due delivery for this caller, or None when nothing is due."""
    for pk in (
        Delivery.objects.due(now).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:5]
    ):
        holder = secrets.token_hex(8)
        taken = (
            Delivery.objects.due(now)
            .filter(pk=pk)
            .update(next_attempt_at=now + timedelta(seconds=claim_seconds()), claimed_by=holder)
        )
        if taken:
            return Claimed(Delivery.objects.select_related("endpoint").get(pk=pk), holder)
    return None


def deliver_due(now: datetime) -> int:
    """Send the webhook deliveries that are due (each within a 15 s deadline)."""
    started = time.monotonic()
    sent = 0
    while sent < PER_RUN and time.monotonic() - started < RUN_SECONDS:
        current = now + timedelta(seconds=time.monotonic() - started)
        claimed = claim_next(current)
        if claimed is None:
            break
        attempt(claimed, current)
        sent += 1
    prune(now)
    return sent


def request_for(delivery: Delivery, endpoint: Endpoint) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt: signed now, for a Standard Webhooks endpoint."""
    if endpoint.format == Format.SLACK:
        return payload.slack_body(delivery.payload).encode(), {}
    body = delivery.payload.encode()
    headers = signing.signed_headers(endpoint.secret(), delivery.message_id, timezone.now(), body)
    return body, headers


def attempt(claimed: Claimed, now: datetime) -> sender.Outcome:
    """One try of a claimed delivery, and its outcome recorded."""
    delivery = claimed.delivery
    endpoint = delivery.endpoint
    started = time.monotonic()
    try:
        url = endpoint.url()
        body, headers = request_for(delivery, endpoint)
    except DecryptionError:
        outcome = sender.Outcome(
            error="The endpoint's URL or secret cannot be decrypted with the configured keys."
        )
    else:
        outcome = sender.post(
            url,
            body,
            headers,
            allow_private=endpoint.allow_private and conf.private_opt_in_permitted(),
            resolver=resolver,
        )
    finished = now + timedelta(seconds=time.monotonic() - started)
    record(claimed, outcome, finished)
    return outcome


def next_wait(number: int, outcome: sender.Outcome) -> float:
    """Seconds before the next attempt after failed attempt ``number``."""
    if outcome.status_code == 429 and outcome.retry_after is not None:
        return max(outcome.retry_after, 1.0)
    return float(BACKOFF[min(number, len(BACKOFF)) - 1])


def record(claimed: Claimed, outcome: sender.Outcome, now: datetime) -> None:
    delivery = claimed.delivery
    number = delivery.attempts + 1
    fields: dict[str, object] = {
        "attempts": number,
        "last_attempt_at": now,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "claimed_by": "",
    }
    disable_reason = ""
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
        endpoints = Endpoint.objects.filter(pk=delivery.endpoint_id)
        if outcome.ok:
            fields.update(state=DeliveryState.DELIVERED, next_attempt_at=None, delivered_at=now)
            endpoints.update(consecutive_failures=0, last_success_at=now)
        elif outcome.status_code == 410:
            fields.update(state=DeliveryState.FAILED, next_attempt_at=None)
            disable_reason = "The receiver answered 410 Gone: it no longer wants these events."
        else:
            if number >= MAX_ATTEMPTS:
                fields.update(state=DeliveryState.FAILED, next_attempt_at=None)
            else:
                fields["next_attempt_at"] = now + timedelta(seconds=next_wait(number, outcome))
            if outcome.status_code != 429:
                # A receiver asking us to slow down is alive: that is no failure of it.
                endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
                failures = endpoints.values_list("consecutive_failures", flat=True).first() or 0
                if failures >= DISABLE_AFTER:
                    disable_reason = (
                        f"{failures} attempts in a row failed; the last: {outcome.error}"
                    )
        Delivery.objects.filter(pk=delivery.pk, claimed_by=claimed.holder).update(**fields)
        disabled = bool(disable_reason) and disable(delivery.endpoint_id, disable_reason, now)
    if disabled:
        tell_staff(delivery.endpoint_id)


def disable(endpoint_id: int, reason: str, now: datetime) -> bool:
    """Switch an enabled endpoint off on sonarweb's own account; True if this did it."""
    done = Endpoint.objects.filter(pk=endpoint_id, enabled=True).update(
        enabled=False,
        disabled_at=now,
        disabled_reason=reason[:300],
        disabled_automatically=True,
    )
    if done:
        log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    return bool(done)


def tell_staff(endpoint_id: int) -> int:
    """Mail every active staff member with an address, when mail is set up. Pages say it
    anyway (the banner on /team/ and /team/webhooks/)."""
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None or not settings.SONARWEB_MAIL_ENABLED:
        return 0
    staff = (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    recipients = sorted(set(staff))
    if not recipients:
        return 0
    link = conf.base_url() + reverse("webhook_detail", args=[endpoint.pk])
    message = (
        f"sonarweb disabled the webhook endpoint “{endpoint.name}” ({endpoint.url_shown}).\n\n"
        f"{endpoint.disabled_reason}\n\n"
        f"Its waiting deliveries are kept. Enable it again once the receiver works: {link}\n"
    )
    return send_mail(
        f"sonarweb: webhook endpoint “{endpoint.name}” disabled",
        message,
        None,
        recipients,
        fail_silently=True,
    )


def redeliver(delivery: Delivery) -> Delivery:
    """The same message (same ``webhook-id``, same body) queued once more, as a new delivery
    with attempts of its own."""
    now = timezone.now()
    return Delivery.objects.create(
        endpoint_id=delivery.endpoint_id,
        tracked_id=delivery.tracked_id,
        event=delivery.event,
        message_id=delivery.message_id,
        payload=delivery.payload,
        created=now,
        next_attempt_at=now,
    )


def prune(now: datetime) -> int:
    """Forget finished deliveries older than KEEP (a batch at a time, now and then)."""
    global _last_prune
    if _last_prune is not None and now - _last_prune < PRUNE_EVERY:
        return 0
    _last_prune = now
    old = list(
        Delivery.objects.filter(created__lt=now - KEEP)
        .exclude(state=DeliveryState.PENDING)
        .values_list("pk", flat=True)[:PRUNE_BATCH]
    )
    deleted, _ = Delivery.objects.filter(pk__in=old).delete()
    return deleted
