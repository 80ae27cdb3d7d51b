"""Refresher processes as they run in production: several at once, killed, stopped mid-call.

Every wait here is for a condition (a readiness line, a call seen upstream, a state in the
database) with a generous deadline, so the tests hold on a busy machine.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from sonarweb.tracker.models import ApiKey, RefresherBeat, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
READY = b"Refreshing unfinished requests every"
WAIT = 120.0  # seconds: a deadline for conditions, never an expected duration


def database_url() -> str:
    """The test database, as a URL the child processes can open."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@" if db["USER"] else ""
    return f"postgres://{auth}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def refresher_env(sim_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        # Production's settings, not the test suite's, with the secrets given explicitly.
        DJANGO_SETTINGS_MODULE="sonarweb.settings",
        DATABASE_URL=database_url(),
        PERPLEXITY_API_BASE=sim_url,
        DJANGO_SECRET_KEY=django_settings.SECRET_KEY,
        SONARWEB_ENCRYPTION_KEYS=",".join(django_settings.ENCRYPTION_KEYS),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SONARWEB_INSECURE_HTTP="1",
        **extra,
    )
    env.pop("DJANGO_DEBUG", None)
    return env


class Child:
    """A refresher process whose output is read as it comes, so we can wait for a line."""

    def __init__(self, sim_url: str, interval: float, **env: str) -> None:
        command = [sys.executable, "manage.py", "refresh_requests", "--interval", str(interval)]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=refresher_env(sim_url, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, into: list[bytes]) -> None:
        for line in iter(stream.readline, b""):
            into.append(line)
            self.lines.put(line)

    def wait_ready(self) -> None:
        """Until it says it is ready: its signal handlers are in place from then on."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if READY in self.lines.get(timeout=1):
                    return
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
        pytest.fail(f"refresher never said it was ready: {b''.join(self.err).decode()[-2000:]}")

    def finish(self, timeout: float = WAIT) -> int:
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    @property
    def stdout(self) -> str:
        return b"".join(self.out).decode()

    @property
    def stderr(self) -> str:
        return b"".join(self.err).decode()


@contextmanager
def children(sim_url: str, count: int, interval: float, **env: str) -> Iterator[list[Child]]:
    procs = [Child(sim_url, interval, **env) for _ in range(count)]
    try:
        yield procs
    finally:
        for child in procs:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait(timeout=30)


def test_concurrent_refreshers_share_the_work(sim_server, simulator, owner, member):
    key = ApiKey(user=member)
    key.set_secret(MEMBER_KEY)
    key.save()
    running, finished = [], []
    for user, api_key in ((owner, OWNER_KEY), (member, MEMBER_KEY)):
        # An hour old: polled again only after the longest interval (30 s) once listed.
        ids = [simulator.add_job(api_key, created_ago=3600, run_seconds=86400) for _ in range(5)]
        done = [simulator.add_job(api_key, queue_seconds=0, run_seconds=0) for _ in range(3)]
        running += ids
        finished += done
        for job_id in ids + done:
            TrackedRequest.objects.create(
                request_id=job_id, added_by=user, next_poll_at=timezone.now() + timedelta(days=1)
            )

    with children(sim_server.url, 4, 0.1) as procs:
        for child in procs:
            child.wait_ready()
        # Every row falls due at once, while all four processes are looping.
        TrackedRequest.objects.update(next_poll_at=timezone.now())
        wait_for(
            lambda: (
                TrackedRequest.objects.filter(last_polled_at__isnull=True).count() == 0
                and TrackedRequest.objects.exclude(claimed_by="").count() == 0
            ),
            "every row to be polled once",
        )
        for child in procs:
            child.proc.send_signal(signal.SIGTERM)
        for child in procs:
            assert child.finish() == 0, child.stderr
            assert "Refresher stopped." in child.stdout

    calls = simulator.calls.all()
    for last4 in (OWNER_KEY[-4:], MEMBER_KEY[-4:]):
        lists = sorted(c.at for c in calls if c.endpoint == "list" and c.key_last4 == last4)
        assert lists, "each key was listed"
        # Two processes racing would list the same key moments apart; a second legitimate
        # pass comes only after the rows' 30 s interval.
        assert all(b - a > 20 for a, b in itertools.pairwise(lists)), lists
    for job_id in finished:
        assert simulator.calls.count(endpoint="get", job_id=job_id) == 1
    for job_id in running:
        assert simulator.calls.count(endpoint="get", job_id=job_id) == 0
    assert TrackedRequest.objects.filter(request_id__in=finished, status="COMPLETED").count() == 6
    assert all(t.has_answer for t in TrackedRequest.objects.filter(request_id__in=finished))
    assert TrackedRequest.objects.filter(request_id__in=running, status="IN_PROGRESS").count() == 10
    # Each process recorded its passes and said when it stopped.
    beats = RefresherBeat.objects.all()
    assert beats.count() == 4 and all(b.passes > 0 and b.stopped_at for b in beats)


def test_sigterm_stops_a_refresher_in_the_middle_of_a_dripping_call(sim_server, simulator, owner):
    deadline = 60
    tracked = TrackedRequest.objects.create(
        request_id=simulator.add_job(OWNER_KEY),
        added_by=owner,
        next_poll_at=timezone.now() + timedelta(days=1),
    )
    # Every list call sends its headers, then one byte every half second.
    simulator.inject("drip", endpoint="list", times=None, delay=0.5)
    with children(sim_server.url, 1, 0.2, PERPLEXITY_TOTAL_TIMEOUT=str(deadline)) as (child,):
        child.wait_ready()
        TrackedRequest.objects.filter(pk=tracked.pk).update(next_poll_at=timezone.now())
        wait_for(lambda: simulator.calls.count(endpoint="list") >= 1, "the call to begin")
        wait_for(lambda: TrackedRequest.objects.exclude(claimed_by="").exists(), "the claim")
        signalled = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        assert child.finish() == 0, child.stderr
        stopped = time.monotonic() - signalled
    assert "Refresher stopped." in child.stdout
    # Within the deadline and 5 s, as promised; the call is in fact abandoned at once.
    assert stopped < deadline + 5
    tracked.refresh_from_db()
    assert tracked.claimed_by == "" and tracked.next_poll_at <= timezone.now()
    assert tracked.poll_failures == 0, "a cancelled call is not upstream's failure"


def test_rows_of_a_killed_refresher_are_taken_over_within_two_intervals(
    sim_server, simulator, owner
):
    deadline = 60  # so a claim lasts 75 s: waiting it out would take far longer than below
    interval = 1.0
    ids = [simulator.add_job(OWNER_KEY) for _ in range(3)]
    for job_id in ids:
        TrackedRequest.objects.create(
            request_id=job_id,
            added_by=owner,
            next_poll_at=timezone.now() + timedelta(days=1),
        )
    simulator.inject("drip", endpoint="list", times=1, delay=0.5)
    env = {"PERPLEXITY_TOTAL_TIMEOUT": str(deadline)}
    with children(sim_server.url, 1, interval, **env) as (doomed,):
        doomed.wait_ready()
        TrackedRequest.objects.update(next_poll_at=timezone.now())
        wait_for(lambda: simulator.calls.count(endpoint="list") >= 1, "the dripping call")
        wait_for(lambda: TrackedRequest.objects.exclude(claimed_by="").count() == 3, "the claims")
        doomed.proc.kill()
        doomed.finish()
        killed = time.time()
    assert TrackedRequest.objects.exclude(claimed_by="").count() == 3, "left claimed"

    with children(sim_server.url, 1, interval, **env) as (heir,):
        heir.wait_ready()
        wait_for(
            lambda: TrackedRequest.objects.filter(status="IN_PROGRESS", claimed_by="").count() == 3,
            "the rows to be polled by the live refresher",
        )
        heir.proc.send_signal(signal.SIGTERM)
        assert heir.finish() == 0, heir.stderr
    second = min(c.at for c in simulator.calls.all() if c.endpoint == "list" and c.at > killed)
    # The dead refresher's lease (2 intervals) ran out and its claims were handed back: the
    # rows did not wait out their 75 s claims.
    assert second - killed < 30
    assert "taken over" in heir.stderr or "handed back" in heir.stderr
