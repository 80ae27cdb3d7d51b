from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Avg, Count, Max, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from sonarweb.accounts.views.access import staff_required
from sonarweb.media.lookup import disk_usage

from ..following.liveness import INTERVALS
from ..models import AnswerArchive, RefresherBeat, UpstreamCall

RECENT_CALLS = 50


@require_safe
@staff_required
def upstream_calls(request: HttpRequest) -> HttpResponse:
    """Calls and errors per key over the last hour."""
    since = timezone.now() - timedelta(hours=1)
    recent = UpstreamCall.objects.filter(at__gte=since)
    per_key = (
        recent.values("key_last4", "api_key__user__username")
        .annotate(
            calls=Count("id"),
            errors=Count("id", filter=~Q(error="")),
            rate_limited=Count("id", filter=Q(status=429)),
            unauthorized=Count("id", filter=Q(status=401)),
            avg_ms=Avg("duration_ms"),
            last=Max("at"),
        )
        .order_by("-calls")
    )
    context = {
        "since": since,
        "per_key": list(per_key),
        "totals": recent.aggregate(calls=Count("id"), errors=Count("id", filter=~Q(error=""))),
        "calls": list(recent.select_related("api_key__user")[:RECENT_CALLS]),
        "refreshers": list(
            RefresherBeat.objects.filter(started_at__gte=timezone.now() - timedelta(days=1))
        ),
        "refresh_horizon": INTERVALS * float(settings.SONARWEB_REFRESH_SECONDS),
        "images": disk_usage(),
        "answers": AnswerArchive.objects.aggregate(count=Count("pk"), bytes=Sum("size")),
    }
    return render(request, "tracker/staff_calls.html", context)
