"""The background refresher: the one place that polls upstream.

Page views never call upstream for polling; this loop keeps every unfinished request moving,
watched or not. It works key by key: a key is leased with an atomic UPDATE so that one
process (on any machine sharing the database) works it at a time, and its due rows are
claimed. Agent runs have no list endpoint: each claimed run is one ``GET``. For Sonar jobs
one list call, following ``next_token``, covers all of a key's claimed jobs, and a job's
detail is fetched only once the list shows it finished, or when the list does not show it at
all; since the Sonar API's retirement that one call answers 403, and every claimed Sonar job
of the key becomes RETIRED. A finished answer is archived and rendered right there.

Each key is worked in a thread of a small pool, so one slow upstream (every call ends by its
total deadline) holds only its own key, and the loop goes on for every other key. Key
leases are short and renewed by a heartbeat while the process lives: a refresher that dies
loses its keys within two refresh intervals, and its claimed rows are handed back at once to
whoever takes the key over. Every finished pass is recorded in ``RefresherBeat``, which the
container health check and the staff page read.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import close_old_connections, connection
from django.db.models import F, Q
from django.utils import timezone

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.documents import listed_by_key
from sonarweb.perplexity.payload import JobSummary

from ..keys.upstream import client_for
from ..models import ApiKey, RefresherBeat, TrackedRequest
from . import chores
from .polling import (
    claim_seconds,
    extend_claim,
    fetch_job,
    job_fields,
    record_failure,
    stop_for_missing_key,
    store,
)
from .scheduler import FAST_SECONDS

log = logging.getLogger("sonarweb.refresher")

# Rows of one key claimed in one pass.
BATCH = 1000
# The list is followed to its end, page by page, each page within the size cap; these bound a
# list that never ends (a fresh next_token every time): pages, and bytes of pages, per pass.
MAX_LIST_PAGES = 50
LIST_BYTES_PER_PASS = 64 * 1024 * 1024
# A lease is never shorter than this, however short the interval (tests use 0.1 s).
MIN_LEASE_SECONDS = 2.0


@dataclass
class PassStats:
    keys: int = 0
    claimed: int = 0
    list_calls: int = 0
    detail_calls: int = 0
    errors: list[str] = field(default_factory=list)


# -- leases -------------------------------------------------------------------------------------


def lease_key(
    key: ApiKey, now: datetime, holder: str = "", seconds: float = MIN_LEASE_SECONDS
) -> datetime | None:
    """Take the key for ``holder`` until the returned time, or None if another process has it.

    Taking over a lease that ran out means its holder died or hung: the rows it had claimed
    are handed back at once instead of waiting out their claims.
    """
    until = now + timedelta(seconds=seconds)
    free = ApiKey.objects.filter(
        Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lte=now), pk=key.pk
    )
    previous = free.values_list("refresh_lease_holder", flat=True).first()
    if not free.update(refresh_lease_until=until, refresh_lease_holder=holder):
        return None
    if previous and previous != holder:
        released = TrackedRequest.objects.filter(
            added_by_id=key.user_id, claimed_by=previous
        ).update(next_poll_at=now, claimed_by="")
        if released:
            log.warning(
                "took over key %s from a refresher that stopped renewing it; %d rows handed back",
                key.mask,
                released,
            )
    return until


def release_key(key: ApiKey, lease: datetime) -> None:
    # Only our own lease: one that ran out and was taken by another process is theirs.
    ApiKey.objects.filter(pk=key.pk, refresh_lease_until=lease).update(
        refresh_lease_until=None, refresh_lease_holder=""
    )


# -- what is due --------------------------------------------------------------------------------


def keys_with_due_requests(now: datetime) -> list[ApiKey]:
    """Keys with due rows, and keys a dead refresher left leased (whose rows it had claimed,
    so they do not look due): taking those over hands the rows back."""
    user_ids = (
        TrackedRequest.objects.due(now)
        .filter(added_by__isnull=False)
        .values_list("added_by_id", flat=True)
        .distinct()
    )
    abandoned = Q(refresh_lease_until__lte=now) & ~Q(refresh_lease_holder="")
    # Never a deactivated member's key (sonarweb.accounts.members), even to take a lease over.
    active = ApiKey.objects.filter(user__is_active=True)
    return list(active.filter(Q(user_id__in=user_ids) | abandoned).order_by("pk"))


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


def stop_orphans(now: datetime) -> None:
    for tracked in orphaned_due(now):
        if TrackedRequest.objects.filter(pk=tracked.pk, next_poll_at__lte=now).exists():
            stop_for_missing_key(tracked, None, now)


# -- working one key ----------------------------------------------------------------------------


def list_statuses(
    api: upstream.PerplexityClient,
    wanted: dict[str, TrackedRequest],
    stats: PassStats,
) -> dict[str, JobSummary]:
    """Page through the key's jobs (newest first) until every wanted id was seen.

    When every wanted job's creation time is known, paging also stops once the list has gone
    past the oldest of them: a job not seen by then is not listed (it expired, or belongs to
    another key), and is asked about on its own. A list that never ends (a ``next_token``
    seen before, more than MAX_LIST_PAGES pages, or more than LIST_BYTES_PER_PASS of pages)
    is left there too: every wanted job it did not show is fetched directly instead.
    """
    found: dict[str, JobSummary] = {}
    created = [t.upstream_created_at for t in wanted.values()]
    oldest = min(created) if created and all(created) else None
    token: str | None = None
    seen_tokens: set[str] = set()
    bytes_at_start = api.bytes_read
    for _ in range(MAX_LIST_PAGES):
        page = api.list_jobs(token)
        stats.list_calls += 1
        found.update({job.id: job for job in page.jobs if job.id in wanted})
        token = page.next_token
        if not token or wanted.keys() <= found.keys():
            break
        if token in seen_tokens or api.bytes_read - bytes_at_start > LIST_BYTES_PER_PASS:
            log.warning("the job list of key does not end; asking about the rest one by one")
            break
        seen_tokens.add(token)
        last = page.jobs[-1].created_at if page.jobs else None
        if oldest is not None and last is not None and last < oldest - timedelta(seconds=1):
            break
    return found


def claim_due_rows(key: ApiKey, now: datetime, holder: str) -> list[TrackedRequest]:
    """Claim up to BATCH due rows of this key in one UPDATE, and read back what we got.

    When a row is due, the key's rows due within the fast interval come along: the one list
    call answers for all of them anyway. Without that, rows whose intervals grow with their
    age (and rows a viewer asked about) fall due a second apart, and each would cost the key
    a list call of its own, several per interval instead of one.
    """
    soon = now + timedelta(seconds=FAST_SECONDS)
    rows = list(
        TrackedRequest.objects.due(soon)
        .filter(added_by_id=key.user_id)
        .order_by("next_poll_at")
        .values_list("pk", "next_poll_at")[:BATCH]
    )
    if not rows or rows[0][1] > now:
        return []
    ids = [pk for pk, _ in rows]
    TrackedRequest.objects.filter(pk__in=ids, next_poll_at__lte=soon).update(
        next_poll_at=now + timedelta(seconds=claim_seconds()), claimed_by=holder
    )
    return list(TrackedRequest.objects.filter(pk__in=ids, claimed_by=holder))


def work_key(
    key: ApiKey,
    clock: Callable[[], datetime],
    stats: PassStats,
    stop: threading.Event | None = None,
    holder: str = "",
    still_held: Callable[[], bool] | None = None,
) -> None:
    now = clock()
    if key.is_invalid:
        for tracked in claim_due_rows(key, now, holder):
            stop_for_missing_key(tracked, key, now)
        return
    claimed = {t.request_id: t for t in claim_due_rows(key, now, holder)}
    if not claimed:
        return
    stats.claimed += len(claimed)
    try:
        api = client_for(key, cancel=stop)
    except upstream.UpstreamError as exc:
        for tracked in claimed.values():
            record_failure(tracked, key, exc, clock())
        return
    with api:
        # Sonar jobs are covered by the key's list; Agent runs have no list and are asked
        # about one by one.
        listed = {rid: t for rid, t in claimed.items() if listed_by_key(rid)}
        summaries: dict[str, JobSummary] = {}
        if listed:
            try:
                summaries = list_statuses(api, listed, stats)
            except upstream.UpstreamError as exc:
                # Retired: one call taught us that every Sonar job of this key is gone.
                stats.errors.append(type(exc).__name__)
                for tracked in listed.values():
                    record_failure(tracked, key, exc, clock())
                claimed = {rid: t for rid, t in claimed.items() if rid not in listed}
        pending = list(claimed.values())
        while pending:
            if (stop is not None and stop.is_set()) or (still_held and not still_held()):
                # Hand the rest back at once rather than leaving them claimed.
                TrackedRequest.objects.filter(pk__in=[t.pk for t in pending]).update(
                    next_poll_at=clock(), claimed_by=""
                )
                return
            tracked = pending.pop(0)
            summary = summaries.get(tracked.request_id)
            if summary is not None and not summary.finished:
                fields = job_fields(summary, clock(), tracked.created, tracked.upstream_created_at)
                store(tracked, **fields)
            elif key.is_invalid:
                stop_for_missing_key(tracked, key, clock())
            else:
                stats.detail_calls += 1
                extend_claim(tracked, clock(), holder)
                fetch_job(tracked, key, api, clock())


# -- one pass, for `--once`, cron and tests -----------------------------------------------------


def run_once(now: datetime | None = None) -> PassStats:
    """One pass over every key with due requests, in this thread, then the chores that are
    due (chores.py). ``now`` pins the clock."""
    clock: Callable[[], datetime] = (lambda: now) if now is not None else timezone.now
    holder = secrets.token_hex(16)
    stats = PassStats()
    stop_orphans(clock())
    for key in keys_with_due_requests(clock()):
        lease = lease_key(key, clock(), holder, seconds=claim_seconds() * 2)
        if lease is None:
            continue
        stats.keys += 1
        try:
            # The row as it is now: the member may have replaced the key since the pass began.
            key.refresh_from_db()
            work_key(key, clock, stats, holder=holder)
        except Exception:
            # One key's trouble must not cost the other keys their pass.
            log.exception("refreshing the requests of key %s failed", key.mask)
            stats.errors.append("unexpected")
        finally:
            release_key(key, lease)
    chores.run_due(clock())
    return stats


# -- the loop -----------------------------------------------------------------------------------


class Refresher:
    """The long-running refresher: a loop that hands keys to a pool of workers.

    The loop thread only does short database work (find due keys, lease them, record the
    pass); every upstream call and every render runs in a worker. A heartbeat thread renews
    the leases of the keys being worked, so they stay ours exactly as long as we are alive.
    """

    def __init__(
        self, *, interval: float, workers: int, stop: threading.Event | None = None
    ) -> None:
        self.interval = interval
        self.workers = max(workers, 1)
        self.stop = stop or threading.Event()
        self.holder = secrets.token_hex(16)
        # A key's lease: two refresh intervals, renewed by the holder while it lives.
        self.lease_seconds = max(2 * interval, MIN_LEASE_SECONDS)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="refresh-key")
        self._busy: dict[int, Future[None]] = {}
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._chores: Future[None] | None = None
        self._beat: RefresherBeat | None = None

    # The loop ---------------------------------------------------------------------------------

    def start(self) -> RefresherBeat:
        self._beat = RefresherBeat.objects.create(
            token=self.holder,
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            interval_seconds=self.interval,
        )
        return self._beat

    def run(self, ready: Callable[[], None] | None = None) -> None:
        """Passes until ``stop`` is set, then a clean shutdown."""
        beat = self._beat or self.start()
        heartbeat = threading.Thread(target=self._heartbeat, name="refresh-heartbeat", daemon=True)
        heartbeat.start()
        if ready is not None:
            ready()
        try:
            while not self.stop.is_set():
                close_old_connections()
                started = time.monotonic()
                try:
                    self.run_pass()
                    RefresherBeat.objects.filter(pk=beat.pk).update(
                        last_pass_at=timezone.now(),
                        last_pass_ms=int((time.monotonic() - started) * 1000),
                        passes=F("passes") + 1,
                        keys_in_flight=len(self._busy),
                    )
                except Exception:
                    log.exception("refresh pass failed; trying again next interval")
                # A database restart or failover must not leave the loop with a dead connection.
                close_old_connections()
                self.stop.wait(self.interval)
        finally:
            self.shutdown()
            heartbeat.join(timeout=self.lease_seconds)

    def run_pass(self) -> None:
        now = timezone.now()
        self._reap()
        stop_orphans(now)
        for key in keys_with_due_requests(now):
            if self.stop.is_set() or len(self._busy) >= self.workers:
                break
            if key.pk in self._busy:
                continue
            if lease_key(key, timezone.now(), self.holder, self.lease_seconds) is None:
                continue
            with self._lock:
                self._held.add(key.pk)
            self._busy[key.pk] = self._pool.submit(self._work, key)
        if self._chores is None or self._chores.done():
            self._chores = self._pool.submit(self._housekeeping)

    def shutdown(self) -> None:
        """Wait for calls in flight (each ends by its deadline), then give every key back."""
        self.stop.set()
        self._pool.shutdown(wait=True)
        self._reap()
        with self._lock:
            self._held.clear()
        self._release()
        if self._beat is not None:
            RefresherBeat.objects.filter(pk=self._beat.pk).update(stopped_at=timezone.now())
        connection.close()

    # Workers ----------------------------------------------------------------------------------

    def _work(self, key: ApiKey) -> None:
        close_old_connections()
        stats = PassStats()
        try:
            key.refresh_from_db()
            work_key(
                key,
                timezone.now,
                stats,
                self.stop,
                self.holder,
                still_held=lambda: key.pk in self._held,
            )
            if stats.claimed:
                log.info(
                    "refreshed key %s: claimed=%d list_calls=%d detail_calls=%d errors=%s",
                    key.mask,
                    stats.claimed,
                    stats.list_calls,
                    stats.detail_calls,
                    ",".join(stats.errors) or "-",
                )
        except Exception:
            log.exception("refreshing the requests of key %s failed", key.mask)
        finally:
            with self._lock:
                self._held.discard(key.pk)
            self._release(pk=key.pk)
            # A pool thread may sit idle for long, or be joined at shutdown: it keeps no
            # database connection between tasks (one connect per key per pass is cheap).
            connection.close()

    def _release(self, **keys: object) -> None:
        """Give back our leases (of these keys only); a key taken over by another is theirs."""
        ApiKey.objects.filter(refresh_lease_holder=self.holder, **keys).update(
            refresh_lease_until=None, refresh_lease_holder=""
        )

    def _housekeeping(self) -> None:
        close_old_connections()
        try:
            # Never a call upstream, and never raises: a chore that fails is logged and
            # runs again next time.
            chores.run_due(timezone.now())
        finally:
            connection.close()

    def _reap(self) -> None:
        self._busy = {pk: future for pk, future in self._busy.items() if not future.done()}

    def _heartbeat(self) -> None:
        """Renew our leases a few times per lease, for as long as the process runs."""
        every = self.lease_seconds / 4
        while not self.stop.wait(every):
            try:
                # A lease that ran out but that nobody took over is still ours (a takeover
                # changes the holder), so it is renewed too.
                ours = ApiKey.objects.filter(refresh_lease_holder=self.holder)
                until = timezone.now() + timedelta(seconds=self.lease_seconds)
                ours.update(refresh_lease_until=until)
                held = set(ours.values_list("pk", flat=True))
                with self._lock:
                    lost = self._held - held
                    self._held &= held
                for pk in lost:
                    log.warning("lost the lease of key id=%s; its rows are handed back", pk)
            except Exception:
                log.exception("renewing refresher leases failed")
            finally:
                close_old_connections()
        connection.close()
