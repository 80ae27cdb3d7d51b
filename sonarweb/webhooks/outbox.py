"""The outbox: a delivery row per matching enabled endpoint, written in the caller's
transaction, so an event exists exactly when its status change does.

The tracker, a layer below (docs/architecture.md), announces a request's end with its
signals, sent inside the transaction that writes it: ``request_finished`` from
``archive_job`` (a finished request is archived together with its final status) and
``request_retired`` when a request becomes RETIRED; ``on_finished`` and ``on_retired``
receive them (connected in ``WebhooksConfig.ready``). The refresher's ``webhooks`` chore sends
what is due (``delivery.deliver_due``).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from django.utils import timezone

from sonarweb.tracker.models import TrackedRequest

from . import payload
from .models import Delivery, Endpoint, Event

log = logging.getLogger("sonarweb.webhooks")

# sonarweb's final statuses, and the event each one is.
STATUS_EVENTS: dict[str, str] = {
    "COMPLETED": Event.COMPLETED,
    "FAILED": Event.FAILED,
    "CANCELLED": Event.CANCELLED,
    "INCOMPLETE": Event.INCOMPLETE,
}


def enqueue_finished(tracked_id: int, status: str, now: datetime | None = None) -> int:
    """The event of a request that just finished with ``status`` (none for a status outside
    sonarweb's vocabulary). Returns how many deliveries were written."""
    event = STATUS_EVENTS.get(status)
    return enqueue(tracked_id, event, now) if event else 0


def enqueue(tracked_id: int, event: str, now: datetime | None = None) -> int:
    """Write one delivery of ``event`` per enabled endpoint that wants it.

    Call it inside the transaction that writes the status change, after the write, so the
    event describes the request as it now is and rolls back with it. Nothing is sent here.
    """
    endpoints = [e for e in Endpoint.objects.filter(enabled=True) if event in e.events]
    if not endpoints:
        return 0
    tracked = TrackedRequest.objects.select_related("added_by").filter(pk=tracked_id).first()
    if tracked is None:
        return 0
    now = now or timezone.now()
    body = payload.event_body(event, now, _describe(tracked))
    Delivery.objects.bulk_create(
        Delivery(
            endpoint=endpoint,
            tracked_id=tracked.pk,
            event=event,
            # The ``webhook-id``: unique per message, the same for each of its attempts.
            message_id=f"msg_{secrets.token_urlsafe(18)}",
            payload=body,
            created=now,
            next_attempt_at=now,
        )
        for endpoint in endpoints
    )
    return len(endpoints)


def _describe(tracked: TrackedRequest) -> dict[str, object]:
    # A bug in describing the request must never roll back the status change it rides on
    # (the archive would then be retried for ever): the few facts that cannot fail instead.
    try:
        return payload.describe(tracked)
    except Exception:
        log.exception("describing request %s for a webhook failed", tracked.slug)
        return payload.minimal(tracked)


def on_finished(
    sender: object, tracked_id: int, status: str, at: datetime, **kwargs: object
) -> None:
    """``sonarweb.tracker.signals.request_finished``: the request's event, if it has one."""
    enqueue_finished(tracked_id, status, at)


def on_retired(sender: object, tracked_id: int, at: datetime, **kwargs: object) -> None:
    """``sonarweb.tracker.signals.request_retired``."""
    enqueue(tracked_id, Event.RETIRED, at)
