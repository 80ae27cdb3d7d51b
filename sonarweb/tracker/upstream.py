"""Upstream clients bound to a stored key: every call is budgeted and logged.

Views, the poller and the refresher all get their client here, so the per-key
budget, 429 pauses, 401 invalidation and the staff call log apply everywhere.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from sonarweb.perplexity import client as upstream

from . import budget
from .crypto import DecryptionError
from .models import ApiKey, UpstreamCall

log = logging.getLogger("sonarweb.upstream")


def record(key: ApiKey, call: upstream.CallRecord) -> None:
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


def client_for(key: ApiKey, *, budgeted: bool = True) -> upstream.PerplexityClient:
    """A client for this stored key. Interactive one-off checks may skip the budget."""

    def before(endpoint: str) -> None:
        if budgeted:
            budget.take(key.pk)

    try:
        secret = key.reveal()
    except DecryptionError as exc:
        raise KeyUnreadable() from exc
    return upstream.client_for_key(
        secret, on_call=lambda call: record(key, call), before_call=before
    )


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
