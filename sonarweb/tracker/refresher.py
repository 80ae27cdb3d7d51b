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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import JobSummary

from .models import ApiKey, TrackedRequest
from .polling import claim, fetch_job, job_fields, record_failure, stop_for_missing_key, store
from .upstream import client_for

log = logging.getLogger("sonarweb.refresher")

KEY_LEASE = timedelta(minutes=2)
BATCH = 200
MAX_LIST_PAGES = 5


@dataclass
class PassStats:
    keys: int = 0
    claimed: int = 0
    list_calls: int = 0
    detail_calls: int = 0
    errors: list[str] = field(default_factory=list)


def lease_key(key: ApiKey, now: datetime) -> bool:
    return bool(
        ApiKey.objects.filter(pk=key.pk)
        .filter(Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lte=now))
        .update(refresh_lease_until=now + KEY_LEASE)
    )


def release_key(key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(refresh_lease_until=None)


def keys_with_due_requests(now: datetime) -> list[ApiKey]:
    user_ids = (
        TrackedRequest.objects.due(now)
        .filter(added_by__isnull=False)
        .values_list("added_by_id", flat=True)
        .distinct()
    )
    return list(ApiKey.objects.filter(user_id__in=user_ids).order_by("pk"))


def orphaned_due(now: datetime) -> list[TrackedRequest]:
    """Due rows whose member has no key (or no longer exists): they stop with a note."""
    return list(
        TrackedRequest.objects.due(now).filter(
            Q(added_by__isnull=True) | Q(added_by__api_key__isnull=True)
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


def work_key(key: ApiKey, now: datetime, stats: PassStats) -> None:
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
    with client_for(key) as api:
        try:
            summaries = list_statuses(api, set(claimed), stats)
        except upstream.UpstreamError as exc:
            stats.errors.append(type(exc).__name__)
            for tracked in claimed.values():
                record_failure(tracked, key, exc, now)
            return
        for request_id, tracked in claimed.items():
            summary = summaries.get(request_id)
            if summary is None or summary.finished:
                if key.is_invalid:
                    stop_for_missing_key(tracked, key, now)
                    continue
                stats.detail_calls += 1
                fetch_job(tracked, key, api, now)
            else:
                store(tracked, **job_fields(summary, "", now, tracked.created))


def run_once(now: datetime | None = None) -> PassStats:
    """One pass over every key with due requests."""
    now = now or timezone.now()
    stats = PassStats()
    for tracked in orphaned_due(now):
        if claim(tracked, now):
            stop_for_missing_key(tracked, None, now)
    for key in keys_with_due_requests(now):
        if not lease_key(key, now):
            continue
        stats.keys += 1
        try:
            work_key(key, now, stats)
        finally:
            release_key(key)
    return stats


def run_forever(stop: threading.Event, interval: float) -> None:
    """Passes until ``stop`` is set; a failing pass is logged and the loop goes on."""
    while not stop.is_set():
        try:
            stats = run_once()
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
        stop.wait(interval)
