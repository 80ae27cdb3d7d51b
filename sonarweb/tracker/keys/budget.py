"""A per-key call budget shared by every process, and pauses after a 429.

Both live on the ApiKey row and change only through conditional UPDATEs, so
gunicorn workers, refreshers and other machines on the same database agree on
them without locks or a cache server.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from sonarweb.perplexity.client import UpstreamError

from ..models import ApiKey

WINDOW = timedelta(minutes=1)
DEFAULT_PAUSE_SECONDS = 30.0
# The longest any wait grows: a key's pause, and a request's backoff (scheduler.py).
MAX_BACKOFF_SECONDS = 300.0


class CallDeferred(UpstreamError):
    """No call was sent: this key must wait ``retry_after`` seconds first."""

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExhausted(CallDeferred):
    message = "This API key's call budget for the minute is used up; waiting."


class KeyPaused(CallDeferred):
    message = "Perplexity asked to slow down for this API key; waiting until it allows calls."


def take(key_id: int, now: datetime | None = None) -> None:
    """Spend one call of the key's budget, or raise BudgetExhausted / KeyPaused."""
    now = now or timezone.now()
    rows = ApiKey.objects.filter(pk=key_id)
    not_paused = Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    # A new window starts when the old one is over; only one process wins that reset.
    fresh = (
        rows.filter(not_paused)
        .filter(Q(budget_window_start__isnull=True) | Q(budget_window_start__lte=now - WINDOW))
        .update(budget_window_start=now, budget_calls=1)
    )
    if fresh:
        return
    spent = (
        rows.filter(not_paused, budget_window_start__gt=now - WINDOW)
        .filter(budget_calls__lt=int(settings.SONARWEB_KEY_CALLS_PER_MINUTE))
        .update(budget_calls=F("budget_calls") + 1)
    )
    if spent:
        return
    key = rows.only("paused_until", "budget_window_start").first()
    if key is None:
        raise BudgetExhausted()
    if key.paused_until and key.paused_until > now:
        raise KeyPaused(retry_after=(key.paused_until - now).total_seconds())
    window_end = (key.budget_window_start or now) + WINDOW
    raise BudgetExhausted(retry_after=max((window_end - now).total_seconds(), 0.5))


def pause_seconds(retry_after: float | None) -> float:
    """The pause a 429 asks for, clamped to the backoff range whatever upstream sent."""
    if retry_after is None or not math.isfinite(retry_after) or retry_after <= 0:
        return DEFAULT_PAUSE_SECONDS
    return min(retry_after, MAX_BACKOFF_SECONDS)


def pause(key_id: int, retry_after: float | None, now: datetime | None = None) -> datetime:
    """After a 429: no call with this key until Retry-After has passed."""
    now = now or timezone.now()
    until = now + timedelta(seconds=pause_seconds(retry_after))
    ApiKey.objects.filter(pk=key_id).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until)
    ).update(paused_until=until)
    return until
