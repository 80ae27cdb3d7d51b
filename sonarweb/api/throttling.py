"""Write calls are limited per token: a fixed window of one minute, kept on the token's row.

Like the per-key call budget (sonarweb/tracker/keys/budget.py), the count changes only through
conditional UPDATEs, so every process and machine on the same database shares it without a
cache server. Reads are not limited here.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from .models import ApiToken
from .problems import retry_after

WINDOW = timedelta(minutes=1)
# Write calls one token may make a minute: an agent that retries in a tight loop is stopped
# long before it can start research faster than a person reads it.
WRITES_PER_MINUTE = 30


def take_write(token: ApiToken, now: datetime | None = None) -> None:
    """Count one write call of ``token``, or raise a 429 problem with Retry-After."""
    now = now or timezone.now()
    rows = ApiToken.objects.filter(pk=token.pk)
    # A new window starts when the old one is over; only one process wins that reset.
    fresh = rows.filter(Q(window_start__isnull=True) | Q(window_start__lte=now - WINDOW)).update(
        window_start=now, window_calls=1
    )
    if fresh:
        return
    spent = rows.filter(window_start__gt=now - WINDOW, window_calls__lt=WRITES_PER_MINUTE).update(
        window_calls=F("window_calls") + 1
    )
    if spent:
        return
    start = rows.values_list("window_start", flat=True).first() or now
    wait = math.ceil(max((start + WINDOW - now).total_seconds(), 1.0))
    raise retry_after(
        429,
        "rate-limited",
        f"This token may make {WRITES_PER_MINUTE} write calls a minute; try again in {wait} s.",
        wait,
    )
