"""The audit trail where it shows: a request's permalink (for staff and its adder) and the
public links page. Inclusion tags, so the tracker's views need no change to show it; the
request is whatever the template passes (a ``tracker.TrackedRequest``), named here only by its
primary key and who added it."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Model

from ..models import LINK_ACTIONS, AuditAction, AuditEvent
from ..views.access import Added, may_manage

register = template.Library()

# A trail longer than this is for the admin, which lists every event.
SHOWN = 50


@register.inclusion_tag("accounts/_audit_trail.html", takes_context=True)
def audit_trail(context: template.Context, tracked: Added) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not may_manage(user, tracked):
        return {"show": False}
    events = AuditEvent.objects.filter(tracked_id=tracked.pk)[:SHOWN]
    return {"show": True, "tracked": tracked, "events": list(events)}


@register.inclusion_tag("accounts/_moved_from.html")
def moved_from(tracked: Model) -> dict[str, Any]:
    """Whose key could not see the job, when a member's key took it over: a fact of the row
    every member sees, where the note saying so lasts only until the next poll."""
    event = (
        AuditEvent.objects.filter(tracked_id=tracked.pk, action=AuditAction.CLAIMED)
        .only("at", "detail")
        .first()
    )
    return {"event": event}


@register.inclusion_tag("accounts/_link_activity.html")
def link_activity() -> dict[str, Any]:
    events = (
        AuditEvent.objects.filter(action__in=LINK_ACTIONS)
        .select_related("tracked")
        .only(
            "at",
            "actor_name",
            "action",
            "request_id",
            "detail",
            "tracked",
            "tracked__slug",
            "tracked__title",
            "tracked__question",
            "tracked__request_id",
        )[:SHOWN]
    )
    return {"events": list(events)}
