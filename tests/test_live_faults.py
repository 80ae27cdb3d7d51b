"""A dripping upstream, with viewers watching, against the live app and a running refresher.

Page views never wait on upstream: while one job's calls drip for their whole deadline, the
status polls of ten viewers and /healthz keep answering, only one call for the job is in
flight at a time, and the refresher keeps archiving another member's jobs.
"""

from __future__ import annotations

import itertools
import threading
import time

import httpx
import pytest
from django.utils import timezone

from sonarweb.tracker.models import ApiKey, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY, wait_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

DEADLINE = 8.0  # each dripping call is cut off here
WAIT = 120.0


def test_viewers_and_healthz_keep_answering_while_upstream_drips(
    live_server, sim_server, simulator, owner, member, settings, refresher
):
    from django.test import Client

    settings.PERPLEXITY_TOTAL_TIMEOUT = DEADLINE
    key = ApiKey(user=member)
    key.set_secret(MEMBER_KEY)
    key.save()
    dripping = TrackedRequest.objects.create(
        request_id=simulator.add_job(OWNER_KEY), added_by=owner
    )
    # The owner's key: every call drips one byte every half second until its deadline.
    simulator.inject("drip", key=OWNER_KEY, times=None, delay=0.5)
    browser = Client()
    browser.force_login(owner)
    cookies = {k: v.value for k, v in browser.cookies.items()}

    latencies: dict[str, list[float]] = {"status": [], "healthz": []}
    failures: list[str] = []
    stop = threading.Event()

    def viewer(path: str, kind: str) -> None:
        with httpx.Client(base_url=live_server.url, cookies=cookies, timeout=60) as http:
            while not stop.is_set():
                started = time.monotonic()
                response = http.get(path, headers={"HX-Request": "true"})
                latencies[kind].append(time.monotonic() - started)
                if response.status_code != 200:
                    failures.append(f"{path}: {response.status_code}")
                time.sleep(0.2)

    threads = [
        threading.Thread(target=viewer, args=(f"/r/{dripping.slug}/status/", "status"))
        for _ in range(10)
    ]
    threads.append(threading.Thread(target=viewer, args=("/healthz", "healthz")))
    for thread in threads:
        thread.start()
    try:
        # Meanwhile another member's job finishes and is archived: polling goes on for
        # every other key.
        other = TrackedRequest.objects.create(
            request_id=simulator.add_job(MEMBER_KEY, queue_seconds=0, run_seconds=0),
            added_by=member,
        )
        wait_for(lambda: TrackedRequest.objects.get(pk=other.pk).has_answer, "the other key's job")
        # Two whole dripping calls for the watched job: the first ran into its deadline.
        wait_for(
            lambda: len([c for c in simulator.calls.all() if c.key_last4 == "a1b2"]) >= 2,
            "two calls with the dripping key",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=WAIT)

    assert not failures, failures[:5]
    assert latencies["status"] and latencies["healthz"]
    # A page that waited on upstream would take the whole deadline; none came close.
    assert max(latencies["healthz"]) < DEADLINE / 2, max(latencies["healthz"])
    assert max(latencies["status"]) < DEADLINE / 2, max(latencies["status"])
    # One call for the job at a time: each list call of this key started only after the
    # previous one had been cut off at its deadline.
    starts = sorted(c.at for c in simulator.calls.all() if c.key_last4 == "a1b2")
    assert all(b - a >= DEADLINE - 1 for a, b in itertools.pairwise(starts)), starts
    dripping.refresh_from_db()
    assert dripping.is_polling and dripping.poll_failures >= 1
    assert "within 8 s" in dripping.note
    assert dripping.next_poll_at > timezone.now() - timezone.timedelta(minutes=10)
