"""The audit trail: who did what, and when; kept for a year.

``record`` writes one event: a member's API token (sonarweb/api) names only its detail; the
tracker's events name a request and perhaps a public link by their ids. Those are written
through ``sonarweb.tracker.audit``, which knows requests and links (this app sits below the
tracker and never imports it). The refresher's housekeeping calls ``prune``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from axes.models import AccessLog
from django.utils import timezone

from .models import AuditAction, AuditEvent

log = logging.getLogger("sonarweb.audit")

RETENTION = timedelta(days=365)
DETAIL_CHARS = AuditEvent._meta.get_field("detail").max_length or 300


def actor(user: Any) -> tuple[Any, str]:
    """The member an event names, and their name kept as text (None and "" for nobody)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None, ""
    return user, user.get_username()


def record(
    user: Any,
    action: str,
    *,
    detail: str = "",
    tracked_id: int | None = None,
    request_id: str = "",
    share_link_id: int | None = None,
) -> AuditEvent:
    """Write one event; an action the trail does not know is refused."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    member, name = actor(user)
    event = AuditEvent.objects.create(
        actor=member,
        actor_name=name,
        action=action,
        tracked_id=tracked_id,
        request_id=request_id,
        share_link_id=share_link_id,
        detail=detail[:DETAIL_CHARS],
    )
    log.info(
        "audit: user=%s %s request_id=%s link=%s",
        name or "-",
        action,
        request_id or "-",
        share_link_id or "-",
    )
    return event


def prune(now: datetime | None = None) -> int:
    """Forget what happened more than a year ago: audit events, and the sign-in log that
    django-axes keeps (failed-attempt counters clear themselves after the lockout window)."""
    now = now or timezone.now()
    deleted, _ = AuditEvent.objects.filter(at__lt=now - RETENTION).delete()
    logs, _ = AccessLog.objects.filter(attempt_time__lt=now - RETENTION).delete()
    return deleted + logs
