"""Upstream clients bound to a stored key: every call is budgeted and logged.

Views and the refresher all get their client here, so the per-key budget, 429 pauses, 401
invalidation and the staff call log apply everywhere. Views only make the calls a person
asked for (start research, check a key, list jobs to import), through ``interactive_client``:
a shorter total deadline, and a cap on how many run at once in this process, so that a slow
upstream can never take every request thread.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone

from sonarweb.perplexity import client as upstream

from ..crypto import DecryptionError
from ..models import ApiKey, UpstreamCall
from . import budget

log = logging.getLogger("sonarweb.upstream")


def record(key: ApiKey, call: upstream.CallRecord) -> None:
    """Log the call; when upstream says the key has no calls left in this window
    (``x-ratelimit-remaining: 0``), nobody calls with it again before the window resets."""
    if call.rate_remaining == 0 and call.rate_reset:
        until = budget.pause(key.pk, call.rate_reset)
        log.info("api key %s has no calls left until %s", key.mask, until.isoformat())
    UpstreamCall.objects.create(
        api_key=key,
        key_last4=key.last4,
        method=call.method,
        endpoint=call.endpoint,
        request_id=call.request_id[:128],
        status=call.status,
        duration_ms=call.duration_ms,
        error=call.error[:40],
    )


class KeyUnreadable(upstream.Unauthorized):
    """The stored key cannot be decrypted with the configured encryption keys."""

    message = (
        "The saved API key can no longer be read (the server's encryption keys changed); "
        "save it again in Settings."
    )


class Busy(upstream.UpstreamError):
    """Every interactive slot of this process is taken by a call still in progress."""

    message = "Several calls to Perplexity are already in progress; try again in a moment."


@functools.cache
def _slots(size: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(max(size, 1))


def _interactive_hooks(after: Callable[[upstream.CallRecord], None] | None) -> dict[str, Any]:
    """before/after-call hooks that hold one interactive slot for the length of each call."""
    slots = _slots(int(settings.SONARWEB_INTERACTIVE_CALLS))

    def take(endpoint: str) -> None:
        # A page never waits for a free slot: a request thread that waited would be one more
        # thread held by a slow upstream, and a flood of starts would then leave none for
        # /healthz or anyone else.
        if not slots.acquire(blocking=False):
            raise Busy()

    def give(call: upstream.CallRecord) -> None:
        slots.release()
        if after is not None:
            after(call)

    return {"before_call": take, "on_call": give}


def _secret(key: ApiKey) -> str:
    try:
        return key.reveal()
    except DecryptionError as exc:
        raise KeyUnreadable() from exc


def client_for(key: ApiKey, cancel: threading.Event | None = None) -> upstream.PerplexityClient:
    """A client for this stored key, for the refresher: budgeted and logged. Setting
    ``cancel`` abandons a call in flight (a refresher shutting down does)."""
    return upstream.client_for_key(
        _secret(key),
        on_call=lambda call: record(key, call),
        before_call=lambda endpoint: budget.take(key.pk),
        cancel=cancel,
    )


def interactive_client(key: ApiKey) -> upstream.PerplexityClient:
    """A client for a call a person asked for and waits on: logged, not budgeted (a person's
    one call must not wait behind the refresher's), short deadline, limited concurrency."""
    return upstream.client_for_key(
        _secret(key), interactive=True, **_interactive_hooks(lambda call: record(key, call))
    )


def interactive_client_for_secret(secret: str) -> upstream.PerplexityClient:
    """As ``interactive_client``, for a key not saved yet (checking it before saving)."""
    return upstream.client_for_key(secret, interactive=True, **_interactive_hooks(None))


def note_failure(key: ApiKey, exc: upstream.UpstreamError) -> None:
    """Key-wide consequences of a failed call: 401 invalidates, 429 pauses."""
    if isinstance(exc, upstream.Unauthorized):
        now = timezone.now()
        # Only the secret that was used: a key the member replaced meanwhile stays valid.
        marked = ApiKey.objects.filter(
            pk=key.pk, encrypted=key.encrypted, invalid_since__isnull=True
        ).update(invalid_since=now)
        if marked:
            key.invalid_since = now
            log.warning("api key %s of user_id=%s was rejected", key.mask, key.user_id)
    elif isinstance(exc, upstream.RateLimited):
        until = budget.pause(key.pk, exc.retry_after)
        log.warning("api key %s paused until %s after 429", key.mask, until.isoformat())
