"""The background refresher: keeps unfinished requests moving with nobody watching.

Each pass works key by key. A key is leased with an atomic UPDATE so only one
process (on any machine sharing the database) works it at a time; its due rows
are claimed like interactive polls are. One paginated list call covers all of a
key's claimed jobs, and a job's detail is fetched only once the list shows it
COMPLETED or FAILED, or when the list does not show it at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import JobSummary

from .models import ApiKey, TrackedRequest, UpstreamCall
from .polling import claim, fetch_job, job_fields, record_failure, stop_for_missing_key, store
from .upstream import client_for

log = logging.getLogger("sonarweb.refresher")

KEY_LEASE = timedelta(minutes=2)
CALL_LOG_DAYS = timedelta(days=7)
PRUNE_EVERY = timedelta(minutes=10)
_last_prune: datetime | None = None
BATCH = 200
MAX_LIST_PAGES = 5


@dataclass
class PassStats:
    keys: int = 0
    claimed: int = 0
    list_calls: int = 0
    detail_calls: int = 0
    errors: list[str] = field(default_factory=list)


def lease_key(key: ApiKey, now: datetime) -> datetime | None:
    """Take the key for this process until the returned time, or None if another has it."""
    until = now + KEY_LEASE
    leased = (
        ApiKey.objects.filter(pk=key.pk)
        .filter(Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lte=now))
        .update(refresh_lease_until=until)
    )
    return until if leased else None


def release_key(key: ApiKey, lease: datetime) -> None:
    # Only our own lease: one that ran out and was taken by another process is theirs.
    ApiKey.objects.filter(pk=key.pk, refresh_lease_until=lease).update(refresh_lease_until=None)


def keys_with_due_requests(now: datetime) -> list[ApiKey]:
    user_ids = (
        TrackedRequest.objects.due(now)
        .filter(added_by__isnull=False)
        # Never poll with the key of a deactivated member (sonarweb.accounts.members).
        .filter(added_by__is_active=True)
        .values_list("added_by_id", flat=True)
        .distinct()
    )
    return list(ApiKey.objects.filter(user_id__in=user_ids).order_by("pk"))


def orphaned_due(now: datetime) -> list[TrackedRequest]:
    """Due rows whose member has no key (or no longer exists): they stop with a note."""
    return list(
        TrackedRequest.objects.due(now).filter(
            Q(added_by__isnull=True)
            | Q(added_by__api_key__isnull=True)
            # A row a poll re-armed while its member was being deactivated.
            | Q(added_by__is_active=False)
        )[:BATCH]
    )


def list_statuses(
    api: upstream.PerplexityClient, wanted: set[str], stats: PassStats
) -> dict[str, JobSummary]:
    """Page through the key's jobs (newest first) until every wanted id was seen."""
    found: dict[str, JobSummary] = {}
    token: str | None = None
    for _ in range(MAX_LIST_PAGES):
        page = api.list_jobs(token)
        stats.list_calls += 1
        found.update({job.id: job for job in page.jobs if job.id in wanted})
        token = page.next_token
        if not token or wanted <= found.keys():
            break
    return found


def work_key(
    key: ApiKey,
    clock: Callable[[], datetime],
    stats: PassStats,
    stop: threading.Event | None = None,
) -> None:
    now = clock()
    if key.is_invalid:
        for tracked in TrackedRequest.objects.due(now).filter(added_by_id=key.user_id)[:BATCH]:
            if claim(tracked, now):
                stop_for_missing_key(tracked, key, now)
        return
    due = list(TrackedRequest.objects.due(now).filter(added_by_id=key.user_id)[:BATCH])
    claimed = {t.request_id: t for t in due if claim(t, now)}
    if not claimed:
        return
    stats.claimed += len(claimed)
    try:
        api = client_for(key)
    except upstream.UpstreamError as exc:
        for tracked in claimed.values():
            record_failure(tracked, key, exc, clock())
        return
    with api:
        try:
            summaries = list_statuses(api, set(claimed), stats)
        except upstream.UpstreamError as exc:
            stats.errors.append(type(exc).__name__)
            for tracked in claimed.values():
                record_failure(tracked, key, exc, clock())
            return
        pending = list(claimed.values())
        while pending:
            if stop is not None and stop.is_set():
                # Hand the rest back at once rather than leaving them claimed.
                TrackedRequest.objects.filter(pk__in=[t.pk for t in pending]).update(
                    next_poll_at=clock()
                )
                return
            tracked = pending.pop(0)
            summary = summaries.get(tracked.request_id)
            if summary is not None and not summary.finished:
                store(tracked, **job_fields(summary, "", clock(), tracked.created))
            elif key.is_invalid:
                stop_for_missing_key(tracked, key, clock())
            else:
                stats.detail_calls += 1
                fetch_job(tracked, key, api, clock())


def prune_call_log(now: datetime) -> int:
    """Drop call records older than the staff page could ever show, at most once a while."""
    global _last_prune
    if _last_prune is not None and now - _last_prune < PRUNE_EVERY:
        return 0
    _last_prune = now
    deleted, _ = UpstreamCall.objects.filter(at__lt=now - CALL_LOG_DAYS).delete()
    return deleted


def run_once(now: datetime | None = None, stop: threading.Event | None = None) -> PassStats:
    """One pass over every key with due requests. ``now`` pins the clock (for tests)."""
    clock: Callable[[], datetime] = (lambda: now) if now is not None else timezone.now
    stats = PassStats()
    for tracked in orphaned_due(clock()):
        if claim(tracked, clock()):
            stop_for_missing_key(tracked, None, clock())
    for key in keys_with_due_requests(clock()):
        if stop is not None and stop.is_set():
            break
        lease = lease_key(key, clock())
        if lease is None:
            continue
        stats.keys += 1
        try:
            # The row as it is now: the member may have replaced the key since the pass began.
            key.refresh_from_db()
            work_key(key, clock, stats, stop)
        except Exception:
            # One key's trouble must not cost the other keys their pass.
            log.exception("refreshing the requests of key %s failed", key.mask)
            stats.errors.append("unexpected")
        finally:
            release_key(key, lease)
    prune_call_log(clock())
    return stats


def run_forever(stop: threading.Event, interval: float) -> None:
    """Passes until ``stop`` is set; a failing pass is logged and the loop goes on."""
    while not stop.is_set():
        close_old_connections()
        try:
            stats = run_once(stop=stop)
            if stats.claimed:
                log.info(
                    "refresh pass: keys=%d claimed=%d list_calls=%d detail_calls=%d errors=%s",
                    stats.keys,
                    stats.claimed,
                    stats.list_calls,
                    stats.detail_calls,
                    ",".join(stats.errors) or "-",
                )
        except Exception:
            log.exception("refresh pass failed; trying again next interval")
        # A database restart or failover must not leave the loop with a dead connection.
        close_old_connections()
        stop.wait(interval)
