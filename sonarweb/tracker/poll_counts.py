"""The status counts a dashboard's poll shows: kept per process, and counted again after
the response that found them out of date has been sent.

Every open dashboard polls every ``SONARWEB_BADGE_POLL_SECONDS``. On a large archive a count
reads every row (40 to 70 ms at 100k answers on PostgreSQL), so each process counts once per
poll interval per set of filters, and the dashboards polling meanwhile share the answer.
The poll that finds the answer out of date gets it as it is, and its own worker thread
counts again once the response is on its way: Django closes a response after the WSGI
server has sent it, and the count runs then, before the request's connection is released.
No poll waits for a count, and the counts shown lag the rows by at most one more interval.
A process with no counts yet for those filters counts before answering.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponseBase

from . import listing
from .search import Filters, Search, SearchTooSlow

log = logging.getLogger("sonarweb.dashboard")

# How long counts may still be shown while every recount fails (then a poll counts first).
KEEP_SECONDS = 120

_lock = threading.Lock()
_recounting: set[str] = set()


def cache_key(text: str, filters: Filters) -> str:
    return "sonarweb:counts:" + hashlib.sha256(repr((text, filters)).encode()).hexdigest()


def _count(text: str, filters: Filters) -> dict[str, int] | None:
    """None when a search count ran past its time bound."""
    try:
        return Search(text).counts(filters) if text else listing.status_counts(filters)
    except SearchTooSlow:
        return None


def _keep(key: str, counts: dict[str, int]) -> None:
    fresh_for = max(settings.SONARWEB_BADGE_POLL_SECONDS - 0.5, 0.5)
    cache.set(key, (counts, time.time() + fresh_for), timeout=KEEP_SECONDS)


def poll_counts(
    text: str, filters: Filters
) -> tuple[dict[str, int] | None, Callable[[], None] | None]:
    """The counts to show now, and the recount to run once the response is sent (or None).

    Counts are None when a search count ran past its time bound: the poll then leaves the
    counts shown as they are.
    """
    key = cache_key(text, filters)
    kept = cache.get(key)
    if kept is None:
        counts = _count(text, filters)
        if counts is not None:
            _keep(key, counts)
        return counts, None
    counts, fresh_until = kept
    if time.time() < fresh_until:
        return counts, None
    with _lock:
        if key in _recounting:
            return counts, None  # another poll of this process is counting them
        _recounting.add(key)

    def recount() -> None:
        try:
            fresh = _count(text, filters)
            if fresh is not None:
                _keep(key, fresh)
        except Exception:
            log.exception("recounting the dashboard's status counts failed")
        finally:
            with _lock:
                _recounting.discard(key)

    return counts, recount


def after_sending(response: HttpResponseBase, work: Callable[[], None]) -> HttpResponseBase:
    """Run ``work`` when the response is closed: after the WSGI server has sent it, before
    Django's end-of-request handling (request_finished) releases the connection.

    Django keeps the callables it runs on close in ``_resource_closers`` (file responses
    close their files this way).
    """
    response._resource_closers.append(work)  # type: ignore[attr-defined]
    return response
