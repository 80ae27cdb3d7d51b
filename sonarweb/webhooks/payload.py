"""What a delivery sends: the event as JSON (Standard Webhooks), or a thin Slack message.

The request is described as the JSON API describes it (``sonarweb.api.serialize``): sonarweb's
own id and status vocabulary, never the upstream id or which Perplexity protocol runs it.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest
from django.urls import reverse

from sonarweb.api.serialize import request_out, title_of
from sonarweb.tracker.models import TrackedRequest

from .conf import SiteAddress

# A title longer than this is cut in a Slack message.
SLACK_TITLE_CHARS = 150


def describe(tracked: TrackedRequest) -> dict[str, Any]:
    """The request as the API shows it, with links on the site's configured address."""
    return request_out(cast(HttpRequest, SiteAddress()), tracked)


def minimal(tracked: TrackedRequest) -> dict[str, Any]:
    """The few facts that cannot fail, should the full description ever raise."""
    permalink = reverse("request_detail", args=[tracked.slug])
    return {
        "id": tracked.slug,
        "status": tracked.badge_status,
        "title": title_of(tracked),
        "permalink": SiteAddress().build_absolute_uri(permalink),
    }


def event_body(event: str, at: datetime, data: dict[str, Any]) -> str:
    """The JSON every format starts from: {type, timestamp, data}, as the spec suggests."""
    body = {"type": f"request.{event}", "timestamp": at, "data": data}
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))


def slack_escape(text: str) -> str:
    """Slack's three control characters, so a title can neither link nor mention anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cost(value: Any) -> str:
    if value is None:
        return "no cost reported"
    try:
        return f"${Decimal(str(value)):.2f}"
    except ArithmeticError:
        return "no cost reported"


def slack_body(payload: str) -> str:
    """A thin Slack message from the stored event: title (linked), status, cost."""
    event = json.loads(payload)
    data = event.get("data") or {}
    title = " ".join(str(data.get("title") or "Untitled research").split())
    if len(title) > SLACK_TITLE_CHARS:
        title = title[: SLACK_TITLE_CHARS - 1] + "…"
    status = str(data.get("status_label") or data.get("status") or "")
    link = str(data.get("permalink") or "")
    # A permalink is the site's own; the characters Slack parses are refused all the same.
    shown = slack_escape(title)
    linked = f"<{link}|{shown}>" if link and not set("<>| ") & set(link) else shown
    cost = _cost(data.get("cost_usd"))
    text = f"{linked}: {slack_escape(status)} · {cost}"
    message = {
        "text": text,
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{linked}*\nStatus: {slack_escape(status)}\nCost: {cost}",
                },
            }
        ],
        "unfurl_links": False,
    }
    return json.dumps(message, separators=(",", ":"))
