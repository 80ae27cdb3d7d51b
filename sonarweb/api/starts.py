"""``POST /api/v1/research``: a start per ``Idempotency-Key``, however often a client sends it.

Upstream has no idempotency key, so this is what stops an agent's retry from paying for two
runs. The key is the member's (two members may use the same one):

1. The body is validated (as the New research page validates its form) and fingerprinted.
2. An ``IdempotencyRecord`` for (member, key) is reserved in its own transaction: of starts
   sent at once with one key, exactly one inserts it and goes on.
3. That one starts the run through ``tracker/following/starting.py``, under the record's own
   UUID (the reservation rules there apply: one ``starting-`` row, one start at a time per member),
   then completes the record with the request it made. A start that certainly started
   nothing deletes the record, so the key can be sent again.
4. Every other start with the key finds the record: another body answers 409; the same body
   answers the record's request, waiting while the first is still in flight (a create is
   bounded by the interactive deadline) rather than answering 409.

A record whose start died in flight (the process was killed) is taken over once it is older
than any create can take: completed with the ``starting-`` row if there is one (it shows as
"may have started"), else released.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from sonarweb.perplexity import client as upstream
from sonarweb.tracker.following.starting import (
    OneAtATime,
    StartFailed,
    StartOptions,
    StartRefused,
    in_flight_seconds,
    start_research,
    started_with,
)
from sonarweb.tracker.forms import NewResearchForm
from sonarweb.tracker.keys.upstream import Busy, KeyUnreadable, note_failure
from sonarweb.tracker.models import ApiKey, TrackedRequest
from sonarweb.tracker.views.messages_upstream import retry_seconds, try_again

from .models import IdempotencyRecord
from .problems import Problem, invalid, retry_after
from .schemas import ResearchIn

log = logging.getLogger("sonarweb.api.starts")

# How often a start waiting for another with its key looks again.
WAIT_STEP_SECONDS = 0.1
# Records older than this are forgotten: the key may then start a new run.
KEEP_RECORDS = timedelta(days=7)
MAX_KEY_CHARS = 255
KEY_REQUIRED = (
    "Send an Idempotency-Key header (a UUID you make for this start, kept for its retries): "
    "without it a retried start could pay for two runs."
)
# The form's fields by the API's names, for error messages, where they differ.
API_NAMES = {
    "domains": "filters.domains",
    "recency": "filters.recency",
    "after_date": "filters.published_after",
    "before_date": "filters.published_before",
    "updated_after": "filters.updated_after",
    "updated_before": "filters.updated_before",
    "effort": "reasoning_effort",
    "__all__": "body",
}


@dataclass(frozen=True)
class Started:
    """The request a start answers with; ``replayed`` when an earlier start made it."""

    tracked: TrackedRequest
    replayed: bool


# -- the body ---------------------------------------------------------------------------------


def validated_form(body: ResearchIn) -> NewResearchForm:
    """The body checked by the New research form, so both start exactly the same runs; a 422
    problem naming the API's fields otherwise."""
    filters = body.filters
    data = {
        "question": body.question,
        "preset": body.preset,
        "model": body.model or "",
        "domains": " ".join(filters.domains),
        "recency": filters.recency or "",
        "after_date": filters.published_after or "",
        "before_date": filters.published_before or "",
        "updated_after": filters.updated_after or "",
        "updated_before": filters.updated_before or "",
        "effort": body.reasoning_effort or "",
        "max_output_tokens": "" if body.max_output_tokens is None else body.max_output_tokens,
        "instructions": body.instructions or "",
        # A stand-in: each start runs under its idempotency record's own UUID.
        "idempotency_key": str(uuid.uuid4()),
    }
    form = NewResearchForm(data)
    if form.is_valid():
        return form
    raise invalid(
        [
            {"field": API_NAMES.get(field, field), "message": str(message)}
            for field, messages in form.errors.items()
            for message in messages
        ]
    )


def fingerprint(form: NewResearchForm) -> str:
    """The same for two bodies that start the same run (after the form's normalising)."""
    start = StartOptions.from_form(form)
    text = json.dumps({"body": start.body, "options": start.options}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def checked_key(value: str) -> str:
    value = value.strip()
    if not value:
        raise Problem(400, "idempotency-key-required", KEY_REQUIRED)
    if len(value) > MAX_KEY_CHARS or not value.isascii() or not value.isprintable():
        raise Problem(
            400,
            "idempotency-key-required",
            f"The Idempotency-Key must be at most {MAX_KEY_CHARS} printable ASCII characters.",
        )
    return value


# -- the records ------------------------------------------------------------------------------


def _complete(record: IdempotencyRecord, tracked: TrackedRequest | None) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, completed_at__isnull=True).update(
        tracked=tracked, completed_at=timezone.now()
    )


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, completed_at__isnull=True).delete()


def _replay(record: IdempotencyRecord) -> Started:
    tracked = TrackedRequest.objects.select_related("added_by").filter(pk=record.tracked_id).first()
    if tracked is None:
        raise Problem(
            410,
            "request-removed",
            "The request this Idempotency-Key started was removed from sonarweb. Use a new "
            "key to start the research again.",
        )
    return Started(tracked, replayed=True)


def _settle(user: AbstractBaseUser, record: IdempotencyRecord) -> bool:
    """Complete the record with its start's ``starting-`` row if there is one (True), else
    release it."""
    row = started_with(user.pk, record.form_key)
    if row is None:
        _release(record)
        return False
    _complete(record, row)
    return True


# -- the start --------------------------------------------------------------------------------


def start(user: AbstractBaseUser, idempotency_key: str, body: ResearchIn) -> Started:
    """The request for this member's start with ``idempotency_key``: made now, or made before."""
    key = checked_key(idempotency_key)
    form = validated_form(body)
    digest = fingerprint(form)
    IdempotencyRecord.objects.filter(
        user=user, created__lt=timezone.now() - KEEP_RECORDS, completed_at__isnull=False
    ).delete()
    give_up = time.monotonic() + in_flight_seconds() + 30
    while True:
        if time.monotonic() > give_up:  # pragma: no cover - every start above is bounded
            raise retry_after(
                503,
                "upstream-unavailable",
                "The start with this Idempotency-Key is still in progress; send it again.",
                5,
            )
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=user, key=key, body_hash=digest, form_key=str(uuid.uuid4())
                )
        except IntegrityError:
            pass  # the key has a record already: see below what it says
        else:
            return _run(user, record, form)
        existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # released a moment ago: reserve it again
        if existing.body_hash != digest:
            raise Problem(
                409,
                "idempotency-key-reused",
                "This Idempotency-Key was sent before with another body. Send the same body "
                "to get that request, or a new key to start another.",
            )
        if existing.completed_at is not None:
            return _replay(existing)
        # Older than any start can take: its process died before completing it.
        if (timezone.now() - existing.created).total_seconds() > in_flight_seconds() + 5:
            if _settle(user, existing):
                log.warning("idempotency record %s completed after its start died", existing.pk)
            continue
        time.sleep(WAIT_STEP_SECONDS)


def _run(user: AbstractBaseUser, record: IdempotencyRecord, form: NewResearchForm) -> Started:
    key = ApiKey.objects.filter(user_id=user.pk).first()
    if key is None or key.is_invalid:
        _release(record)
        if key is None:
            detail = (
                "Save your Perplexity API key in sonarweb's Settings first: research starts "
                "with it. (The API never takes the key itself.)"
            )
        else:
            detail = (
                "Perplexity rejected your saved API key earlier: replace it in Settings, then "
                "start again."
            )
        raise Problem(422, "no-api-key", detail)
    try:
        made = start_research(user, key, StartOptions.from_form(form, form_key=record.form_key))
    except StartRefused as refusal:
        _release(record)
        raise _refused(refusal, key) from refusal
    except Exception:
        # Whatever broke, a row may stand for a run that started: the key keeps it.
        _settle(user, record)
        raise
    _complete(record, made.tracked)
    tracked = TrackedRequest.objects.select_related("added_by").get(pk=made.tracked.pk)
    return Started(tracked, replayed=made.kind == "already")


def _refused(refusal: StartRefused, key: ApiKey) -> Problem:
    """Why nothing was started, as a problem (the record is gone: the key may be resent)."""
    if isinstance(refusal, OneAtATime):
        return retry_after(
            429,
            "one-start-at-a-time",
            "Another research you started is still waiting for Perplexity's answer. Starts "
            "run one at a time, so that a slow answer never turns into two paid runs.",
            5,
        )
    if not isinstance(refusal, StartFailed):
        return retry_after(
            503, "upstream-unavailable", "The start clashed with another; send it again.", 2
        )
    exc = refusal.error
    if isinstance(exc, KeyUnreadable):
        return Problem(422, "no-api-key", f"{exc.note} Nothing was started.")
    if isinstance(exc, upstream.Unauthorized):
        note_failure(key, exc)
        return Problem(
            422,
            "no-api-key",
            "Perplexity rejected your API key, so nothing was started. Replace it in Settings.",
        )
    if isinstance(exc, upstream.RateLimited):
        # As on the page: a 429 to a create must not pause the polling of running ones.
        detail = f"Perplexity is limiting how fast your key can start research. {try_again(exc)}"
        return retry_after(429, "upstream-rate-limited", detail, retry_seconds(exc) or 60)
    if isinstance(exc, upstream.Rejected):
        details = "; ".join(exc.details) if exc.details else f"HTTP {exc.status}"
        detail = f"Perplexity refused the start; nothing was started: {details}"
        return Problem(422, "upstream-rejected", detail)
    if isinstance(exc, Busy | upstream.NetworkError | upstream.UpstreamTimeout):
        return retry_after(
            503, "upstream-unavailable", f"{exc.note} Nothing was sent; try again.", 5
        )
    return Problem(
        502,
        "upstream-error",
        f"Perplexity refused the start (HTTP {exc.status}), so nothing was started.",
    )
