"""The audit trail: who created, revoked or let expire a public link, and who retitled,
imported, took over or removed a request.

Views call ``record`` in one line after the change is made. The refresher's housekeeping
calls ``record_expired_links`` (expiry happens with nobody acting) and ``prune``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from axes.models import AccessLog
from django.db.models import Exists, OuterRef
from django.utils import timezone

from sonarweb.tracker.models import ShareLink, TrackedRequest

from .models import AuditAction, AuditEvent

log = logging.getLogger("sonarweb.audit")

RETENTION = timedelta(days=365)
DETAIL_CHARS = AuditEvent._meta.get_field("detail").max_length or 300


def _actor(user: Any) -> tuple[Any, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return None, ""
    return user, user.get_username()


def _touch(tracked_ids: Iterable[int]) -> None:
    """A finished permalink page is cached per member under the row's ``updated``;
    the trail is on that page, so a new event must retire the cached copies."""
    ids = [pk for pk in tracked_ids if pk is not None]
    if ids:
        TrackedRequest.objects.filter(pk__in=ids).update(updated=timezone.now())


def record(
    user: Any,
    action: str,
    *,
    tracked: TrackedRequest | None = None,
    link: ShareLink | None = None,
    detail: str = "",
) -> AuditEvent:
    """Write one event. ``link`` alone is enough for link events: its request is taken."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    if link is not None:
        tracked = tracked or link.tracked
        if action == AuditAction.LINK_CREATED and not detail:
            detail = (
                f"Expires {link.expires_at:%Y-%m-%d %H:%M %Z}."
                if link.expires_at
                else "Never expires."
            )
    actor, name = _actor(user)
    event = AuditEvent.objects.create(
        actor=actor,
        actor_name=name,
        action=action,
        tracked=tracked,
        request_id=tracked.request_id if tracked is not None else "",
        share_link=link,
        detail=detail[:DETAIL_CHARS],
    )
    if tracked is not None:
        _touch([tracked.pk])
    log.info(
        "audit: user=%s %s request_id=%s link=%s",
        name or "-",
        action,
        event.request_id or "-",
        link.pk if link is not None else "-",
    )
    return event


def record_imported(user: Any, request_ids: Iterable[str]) -> int:
    """One "imported" event per request the member's import just added."""
    ids = list(request_ids)
    if not ids:
        return 0
    actor, name = _actor(user)
    rows = list(
        TrackedRequest.objects.filter(request_id__in=ids, added_by=actor).only("pk", "request_id")
    )
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            at=now,
            actor=actor,
            actor_name=name,
            action=AuditAction.IMPORTED,
            tracked=row,
            request_id=row.request_id,
        )
        for row in rows
    )
    _touch(row.pk for row in rows)
    return len(rows)


def record_expired_links(now: datetime | None = None) -> int:
    """Record, once, each public link whose expiry has passed. Safe to run often and from
    several processes at once; the member who chose the expiry is named as having let it
    expire.

    Links that expired longer ago than the trail keeps are left alone, so that pruning an
    old event never makes its link count as newly expired.
    """
    now = now or timezone.now()
    already = AuditEvent.objects.filter(action=AuditAction.LINK_EXPIRED, share_link=OuterRef("pk"))
    links = list(
        ShareLink.objects.filter(
            revoked_at__isnull=True, expires_at__lte=now, expires_at__gt=now - RETENTION
        )
        .filter(~Exists(already))
        .select_related("tracked", "created_by")
        .only("expires_at", "tracked__request_id", "created_by__username")
    )
    events = [
        AuditEvent(
            at=now,
            actor=link.created_by,
            actor_name=link.created_by.get_username() if link.created_by else "",
            action=AuditAction.LINK_EXPIRED,
            tracked=link.tracked,
            request_id=link.tracked.request_id,
            share_link=link,
            detail=f"Expired {link.expires_at:%Y-%m-%d %H:%M %Z}.",
        )
        for link in links
    ]
    AuditEvent.objects.bulk_create(events, ignore_conflicts=True)
    _touch(link.tracked.pk for link in links)
    return len(events)


def prune(now: datetime | None = None) -> int:
    """Forget what happened more than a year ago: audit events, and the sign-in log that
    django-axes keeps (failed-attempt counters clear themselves after the lockout window)."""
    now = now or timezone.now()
    deleted, _ = AuditEvent.objects.filter(at__lt=now - RETENTION).delete()
    logs, _ = AccessLog.objects.filter(attempt_time__lt=now - RETENTION).delete()
    return deleted + logs
