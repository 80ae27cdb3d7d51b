"""A request's audit trail: who created, revoked or let expire a public link, and who
retitled, imported, took over, cancelled or removed a request.

Views call ``record`` in one line after the change is made. The refresher's housekeeping
calls ``record_expired_links`` (expiry happens with nobody acting). The events are the
accounts app's (``AuditEvent``, written by ``sonarweb.accounts.audit``); what they say about
requests and links is said here, next to the requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from sonarweb.accounts import audit as trail
from sonarweb.accounts.models import AuditAction, AuditEvent

from .models import ShareLink, TrackedRequest


def _touch(tracked_ids: Iterable[int]) -> None:
    """A finished permalink's ETag is made with the row's ``updated``; the trail is on that
    page, so a new event must change it."""
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
    if link is not None:
        tracked = tracked or link.tracked
        if action == AuditAction.LINK_CREATED and not detail:
            expires = link.expires_at
            detail = f"Expires {expires:%Y-%m-%d %H:%M %Z}." if expires else "Never expires."
    event = trail.record(
        user,
        action,
        detail=detail,
        tracked_id=tracked.pk if tracked is not None else None,
        request_id=tracked.request_id if tracked is not None else "",
        share_link_id=link.pk if link is not None else None,
    )
    if tracked is not None:
        _touch([tracked.pk])
    return event


def record_imported(user: Any, request_ids: Iterable[str]) -> int:
    """One "imported" event per request the member's import just added."""
    ids = list(request_ids)
    if not ids:
        return 0
    actor, name = trail.actor(user)
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
            revoked_at__isnull=True, expires_at__lte=now, expires_at__gt=now - trail.RETENTION
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
