"""The team page's webhook lines, for staff only: ``{% webhooks_alerts %}`` says which
endpoints sonarweb disabled (a 410, or failing again and again), ``{% webhooks_link %}`` links
to /team/webhooks/."""

from __future__ import annotations

from typing import Any

from django import template

from ..models import Endpoint

register = template.Library()


def _is_staff(context: template.Context) -> bool:
    user = context.get("user")
    return bool(user is not None and getattr(user, "is_staff", False))


@register.inclusion_tag("webhooks/_alerts.html", takes_context=True)
def webhooks_alerts(context: template.Context) -> dict[str, Any]:
    if not _is_staff(context):
        return {"disabled": []}
    disabled = Endpoint.objects.filter(enabled=False, disabled_automatically=True).only(
        "pk", "name", "disabled_reason"
    )
    return {"disabled": list(disabled)}


@register.inclusion_tag("webhooks/_link.html", takes_context=True)
def webhooks_link(context: template.Context) -> dict[str, Any]:
    return {"show": _is_staff(context)}
