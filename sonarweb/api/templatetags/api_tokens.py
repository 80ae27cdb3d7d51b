"""``{% api_tokens_section %}``: the API token section of the Settings page."""

from __future__ import annotations

from typing import Any

from django import template

from ..views_tokens import tokens_context

register = template.Library()


@register.inclusion_tag("api/_tokens.html", takes_context=True)
def api_tokens_section(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    section = tokens_context(request.user)
    section.update(request=request, user=request.user, csrf_token=context.get("csrf_token"))
    section["from_page"] = "settings"
    return section
