"""Polling one tracked request, and storing what upstream answered.

Only the background refresher calls upstream for polling (see refresher.py); page views read
the database and may at most ask for an early poll (``request_early_poll``). A row is claimed
with one atomic ``UPDATE ... WHERE next_poll_at <= now`` before its call, for longer than the
call's total deadline, so a slow call is never made twice. Once a row holds a completed
archive, its archive fields are never written again (notes and states still are), so an
archived answer is never overwritten or lost by a later failure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import FINISHED_STATUSES, Job, JobSummary

from .. import signals
from ..archive.store import archive_job, prepare, store_prepared
from ..fitting import fit
from ..keys import budget
from ..keys.upstream import client_for, note_failure
from ..models import ApiKey, AppState, TrackedRequest, UpstreamStatus
from .scheduler import FAST_SECONDS, NOT_FOUND_CONFIRM_SECONDS, backoff, poll_interval

log = logging.getLogger("sonarweb.polling")

# After this many failures in a row with no status at all, the badge says ERROR.
ERROR_AFTER_FAILURES = 3
# A COMPLETED job without an answer is asked about again this many times before it is
# archived as it is: upstream has been seen filling the answer in a moment later.
EMPTY_ANSWER_RETRIES = 3
MAX_COST = Decimal(10) ** 6
# A claim outlasts the call's total deadline by this much, so it never runs out mid-call.
CLAIM_MARGIN_SECONDS = 15.0


def claim_seconds() -> float:
    return float(settings.PERPLEXITY_TOTAL_TIMEOUT) + CLAIM_MARGIN_SECONDS


def claim(tracked: TrackedRequest, now: datetime) -> bool:
    """Take the right to call upstream for this row now. True for exactly one caller."""
    claimed = TrackedRequest.objects.filter(pk=tracked.pk, next_poll_at__lte=now).update(
        next_poll_at=now + timedelta(seconds=claim_seconds()), claimed_by=""
    )
    return claimed == 1


def extend_claim(tracked: TrackedRequest, now: datetime, holder: str) -> None:
    """Renew our claim right before a call, however long the row waited its turn."""
    TrackedRequest.objects.filter(pk=tracked.pk, claimed_by=holder).update(
        next_poll_at=now + timedelta(seconds=claim_seconds())
    )


def request_early_poll(pks: Iterable[int]) -> int:
    """A viewer is watching: make these rows due within the fast interval.

    One conditional UPDATE, no upstream call: the refresher picks the rows up on its next
    pass and folds them into the key's list call, so viewers cost the key nothing extra.
    Rows backing off after failures, paused, or already in a call are left alone.
    """
    soon = timezone.now() + timedelta(seconds=FAST_SECONDS)
    return TrackedRequest.objects.filter(
        pk__in=list(pks), next_poll_at__gt=soon, poll_failures=0, claimed_by=""
    ).update(next_poll_at=soon)


# Fields that make up the archive of a finished job. Once a row holds a finished archive
# these are never written again; notes and states still are.
ARCHIVE_FIELDS = frozenset(
    {
        "status",
        "model",
        "upstream_created_at",
        "started_at",
        "completed_at",
        "failed_at",
        "error_message",
        "total_cost",
        "next_poll_at",
    }
)


def store(tracked: TrackedRequest, **fields: Any) -> None:
    """Write what a poll learned, never touching a finished archive; then reload.

    Every write releases the row's claim: the call it was made for is over.
    """
    now = timezone.now()
    fields = fit(TrackedRequest, {**fields, "claimed_by": ""})
    archive = {k: v for k, v in fields.items() if k in ARCHIVE_FIELDS}
    other = {k: v for k, v in fields.items() if k not in ARCHIVE_FIELDS}
    rows = TrackedRequest.objects.filter(pk=tracked.pk)
    with transaction.atomic():
        # Becoming RETIRED ends a request: its webhooks are queued in the same transaction,
        # once (only the write that changes the state counts).
        retiring = other.get("state") == AppState.RETIRED and bool(
            rows.exclude(state=AppState.RETIRED).update(state=AppState.RETIRED, updated=now)
        )
        if archive:
            rows.filter(~Q(status__in=FINISHED_STATUSES) | Q(archived_at__isnull=True)).update(
                **archive, updated=now
            )
        if other:
            rows.update(**other, updated=now)
        if retiring:
            signals.request_retired.send(sender=TrackedRequest, tracked_id=tracked.pk, at=now)
    tracked.refresh_from_db()


def _cost(job: JobSummary) -> Decimal | None:
    response = job.response if isinstance(job, Job) else None
    cost = response.total_cost if response else None
    if cost is None:
        return None
    try:
        value = Decimal(str(cost)).quantize(Decimal("0.000001"))
    except InvalidOperation:
        return None
    # What the column holds (12 digits, 6 after the point); a wilder figure is no cost at all.
    return value if abs(value) < MAX_COST else None


def job_fields(
    job: JobSummary, now: datetime, created: datetime, first_seen: datetime | None = None
) -> dict[str, Any]:
    """What a successful answer (a full job, or a summary from the list) changes on the row.

    ``first_seen`` is the upstream creation time the row already holds: the Agent API's
    ``created_at`` moves between polls, so the first one stays. A status outside sonarweb's
    vocabulary is stored verbatim and polled like a running job.
    """
    fields: dict[str, Any] = {
        "status": job.status,
        "state": AppState.PENDING,
        "model": job.model,
        "upstream_created_at": first_seen or job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "failed_at": job.failed_at,
        "last_polled_at": now,
        "last_success_at": now,
        "poll_failures": 0,
        "not_found_strikes": 0,
        "note": "",
    }
    if isinstance(job, Job):
        fields["error_message"] = job.error_message
    if job.status not in UpstreamStatus.values:
        fields["note"] = f"Perplexity reported a status sonarweb does not know: {job.status[:40]}."
    if job.finished and isinstance(job, Job):
        fields["next_poll_at"] = None
        fields["total_cost"] = _cost(job)
        ended = (UpstreamStatus.FAILED, UpstreamStatus.CANCELLED)
        if job.status in ended and job.failed_at is None:
            # Agent runs carry no end time when they fail or are cancelled: ours stands in.
            fields["failed_at"] = now
    else:
        age = now - (first_seen or job.created_at or created)
        fields["next_poll_at"] = now + timedelta(seconds=poll_interval(age))
    return fields


def failure_fields(
    tracked: TrackedRequest, exc: upstream.UpstreamError, now: datetime
) -> dict[str, Any]:
    """What a failed call changes on the row: never the last known status or answer."""
    if isinstance(exc, budget.CallDeferred):
        # Nothing was sent: not a failure of upstream, just a wait.
        wait = max(exc.retry_after or 1.0, 1.0)
        return {"next_poll_at": now + timedelta(seconds=wait), "note": exc.note}
    if isinstance(exc, upstream.Cancelled):
        # We gave up on the call (shutting down): due again at once, for whoever is next.
        return {"next_poll_at": now}
    failures = tracked.poll_failures + 1
    fields: dict[str, Any] = {
        "last_polled_at": now,
        "poll_failures": failures,
        "note": exc.note,
    }
    if isinstance(exc, upstream.NotFound):
        strikes = tracked.not_found_strikes + 1
        fields["not_found_strikes"] = strikes
        if strikes >= 2:
            note = "Perplexity does not know this request id (checked twice)."
            fields.update(state=AppState.NOT_FOUND, next_poll_at=None, note=note)
        else:
            fields["next_poll_at"] = now + timedelta(seconds=NOT_FOUND_CONFIRM_SECONDS)
        return fields
    if isinstance(exc, upstream.Retired):
        # Final, and no fault of the key: the job's id and whatever was archived stay.
        fields.update(state=AppState.RETIRED, next_poll_at=None, poll_failures=0, note="")
        return fields
    if isinstance(exc, upstream.Unauthorized):
        fields.update(state=AppState.KEY_INVALID, next_poll_at=None)
        return fields
    retry_after = exc.retry_after if isinstance(exc, upstream.RateLimited) else None
    if not exc.transient:
        # Upstream refuses the question itself (a 4xx): asking again will not help.
        fields.update(state=AppState.ERROR, next_poll_at=None, note=f"{exc.note} Polling stopped.")
        return fields
    fields["next_poll_at"] = now + timedelta(seconds=backoff(failures, retry_after=retry_after))
    if not tracked.status and failures >= ERROR_AFTER_FAILURES:
        fields["state"] = AppState.ERROR
    return fields


DEACTIVATED_NOTE = "Polling stopped: the member who added this request was deactivated."


def stop_for_missing_key(tracked: TrackedRequest, key: ApiKey | None, now: datetime) -> None:
    adder = tracked.added_by if tracked.added_by_id else None
    if adder is not None and not adder.is_active:
        note = DEACTIVATED_NOTE
    elif key is not None:
        note = (
            "The API key of the member who added this request was rejected by Perplexity; "
            "it must be replaced in Settings."
        )
    else:
        note = "The member who added this request has no API key saved."
    store(tracked, state=AppState.KEY_INVALID, next_poll_at=None, note=note, last_polled_at=now)


def fetch_job(
    tracked: TrackedRequest, key: ApiKey, api: upstream.PerplexityClient, now: datetime
) -> None:
    """One GET of the job or run with an open client, and store the outcome."""
    try:
        job, raw_text = api.fetch(tracked.request_id)
        answer_missing = job.status == UpstreamStatus.COMPLETED and job.response is None
        if answer_missing and tracked.poll_failures < EMPTY_ANSWER_RETRIES:
            raise upstream.BadPayload(
                "Perplexity reported the job completed but sent no answer; asking again."
            )
    except upstream.UpstreamError as exc:
        record_failure(tracked, key, exc, now)
        return
    fields = job_fields(job, now, tracked.created, tracked.upstream_created_at)
    if not job.finished:
        store(tracked, **fields)
        return
    # A finished job's document, its rendering and the final status land together, in one
    # transaction; a row that already holds a completed archive only gets its notes updated.
    prepared = prepare(tracked, job)
    # Rendered: the parsed answer goes before the write, which copies the text.
    del job
    if not store_prepared(tracked, prepared, raw_text, fields):
        store(tracked, **fields)


def record_failure(
    tracked: TrackedRequest, key: ApiKey, exc: upstream.UpstreamError, now: datetime
) -> None:
    note_failure(key, exc)
    if isinstance(exc, upstream.WrongJob):
        log.warning("upstream answered another document for request_id=%s", tracked.request_id)
    store(tracked, **failure_fields(tracked, exc, now))


def refresh(tracked: TrackedRequest, now: datetime) -> None:
    """Call upstream for a row this caller has claimed, and store the outcome."""
    key = None
    if tracked.added_by_id is not None:
        key = ApiKey.objects.filter(user_id=tracked.added_by_id).first()
    if key is None or key.is_invalid:
        stop_for_missing_key(tracked, key, now)
        return
    try:
        api = client_for(key)
    except upstream.UpstreamError as exc:
        record_failure(tracked, key, exc, now)
        return
    with api:
        fetch_job(tracked, key, api, now)


def refresh_if_due(tracked: TrackedRequest, now: datetime | None = None) -> TrackedRequest:
    """Poll upstream for this one request if it is due and nobody else is doing it.

    For the refresher's own fallbacks and for tests; page views never call this.
    """
    now = now or timezone.now()
    if tracked.next_poll_at is None or tracked.next_poll_at > now:
        return tracked
    if not claim(tracked, now):
        tracked.refresh_from_db()
        return tracked
    try:
        refresh(tracked, now)
    except Exception:
        # Whatever went wrong, the page still answers with the last known state; the row
        # is tried again after a pause instead of waiting out the claim.
        log.exception("polling request_id=%s failed unexpectedly", tracked.request_id)
        store(
            tracked,
            next_poll_at=now + timedelta(seconds=backoff(tracked.poll_failures + 1)),
            poll_failures=tracked.poll_failures + 1,
            note="Something went wrong while asking Perplexity; trying again shortly.",
        )
    return tracked


def resume_for_user(user_id: int) -> int:
    """After a key is saved: poll again every unfinished request it stopped."""
    return (
        TrackedRequest.objects.filter(added_by_id=user_id, next_poll_at__isnull=True)
        .unfinished()
        .exclude(state__in=[AppState.NOT_FOUND, AppState.RETIRED, AppState.UNCONFIRMED])
        .update(
            next_poll_at=timezone.now(),
            state=AppState.PENDING,
            note="",
            poll_failures=0,
            claimed_by="",
        )
    )


def archive_saved(tracked: TrackedRequest, job: Job, raw_text: str) -> bool:
    """Archive a finished document that came from elsewhere (an uploaded file, the demo's
    answers saved before the Sonar API's retirement) as if a poll had just brought it."""
    fields = job_fields(job, timezone.now(), tracked.created)
    return archive_job(tracked, job, raw_text, fields)
