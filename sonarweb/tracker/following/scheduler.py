"""When to ask upstream next: pure functions of age, failures and a random source.

A young job is polled often so viewers see it finish quickly; an old one less,
to stay gentle with the per-key rate limit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import timedelta

from ..keys.budget import MAX_BACKOFF_SECONDS

FAST_SECONDS = 3.0
MAX_SECONDS = 30.0
FAST_PHASE_SECONDS = 180.0
# Past the fast phase, the interval grows by one second for every GROWTH seconds of age.
GROWTH = 20.0
NOT_FOUND_CONFIRM_SECONDS = 3.0


def poll_interval(age: timedelta) -> float:
    """Seconds until the next poll for a job of this age (about 3 s, growing to 30 s)."""
    seconds = max(age.total_seconds(), 0.0)
    if seconds <= FAST_PHASE_SECONDS:
        return FAST_SECONDS
    return min(MAX_SECONDS, FAST_SECONDS + (seconds - FAST_PHASE_SECONDS) / GROWTH)


def backoff(
    failures: int,
    *,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with jitter after ``failures`` failures in a row (1 or more).

    The delay is drawn from the upper half of the exponential window so retries
    from many rows spread out but never come sooner than half the window. A
    Retry-After from upstream is a floor.
    """
    window = min(MAX_BACKOFF_SECONDS, FAST_SECONDS * 2 ** max(min(failures, 16) - 1, 0))
    delay = window / 2 + rand() * window / 2
    if retry_after is not None and math.isfinite(retry_after):
        # A floor, but never beyond the backoff range: inf or 1e20 must still fit a timedelta.
        delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
    return delay
