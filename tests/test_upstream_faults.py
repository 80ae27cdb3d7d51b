"""Nothing upstream sends can stall, swell or corrupt the app: the simulator's fault modes
against the real client, over real HTTP, and through polling into the database (run on
SQLite by `make test` and on PostgreSQL by `make test-postgres`)."""

from __future__ import annotations

import json
import time
import tracemalloc
from datetime import timedelta

import pytest
from django.utils import timezone

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.client import PerplexityClient, parse_retry_after
from sonarweb.simulator import faults
from sonarweb.tracker.following.polling import refresh_if_due
from sonarweb.tracker.following.scheduler import MAX_BACKOFF_SECONDS
from sonarweb.tracker.keys import budget
from sonarweb.tracker.models import AnswerArchive, ApiKey, TrackedRequest

from .conftest import OWNER_KEY

MB = 1024 * 1024


def client(url: str, **kwargs) -> PerplexityClient:
    kwargs.setdefault("read_timeout", 5.0)
    kwargs.setdefault("connect_timeout", 5.0)
    return PerplexityClient(OWNER_KEY, base_url=url, **kwargs)


# -- time ---------------------------------------------------------------------------------------


def test_a_dripping_body_ends_at_the_total_deadline(sim_server, simulator):
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)
    # A byte every 0.2 s never trips the 5 s read timeout; only the total deadline can stop it.
    simulator.inject("drip", endpoint="get", delay=0.2)
    started = time.monotonic()
    with (
        client(sim_server.url, total_timeout=1.5) as api,
        pytest.raises(upstream.UpstreamTimeout) as info,
    ):
        api.get_job(job_id)
    elapsed = time.monotonic() - started
    assert "within 1.5 s" in str(info.value)
    # The whole body would take hours at this pace; the call ended near its deadline.
    assert elapsed < 30


def test_a_cancelled_call_lets_go_at_once(sim_server, simulator):
    import threading

    job_id = simulator.add_job(OWNER_KEY)
    simulator.inject("drip", endpoint="get", delay=0.5)
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    started = time.monotonic()
    with client(sim_server.url, total_timeout=600, cancel=cancel) as api:
        with pytest.raises(upstream.Cancelled):
            api.get_job(job_id)
    assert time.monotonic() - started < 60


# -- size ---------------------------------------------------------------------------------------


def test_a_declared_400_mb_body_is_refused_before_reading_it(sim_server, simulator):
    job_id = simulator.add_job(OWNER_KEY)
    simulator.inject("oversize", endpoint="get", size=400 * MB)
    with client(sim_server.url) as api, pytest.raises(upstream.TooLarge) as info:
        api.get_job(job_id)
    assert str(info.value) == "Perplexity's answer is 400 MB, over the 32 MB limit."
    assert not info.value.transient


@pytest.mark.parametrize("kind", ["oversize", "gzip_bomb"])
def test_an_oversized_or_inflating_body_stops_at_the_cap_and_stays_small(
    sim_server, simulator, kind
):
    job_id = simulator.add_job(OWNER_KEY)
    # No Content-Length to go by: the cap must hold while the body streams and inflates.
    simulator.inject(kind, endpoint="get", size=400 * MB, declare_length=False)
    if kind == "gzip_bomb":
        faults.gzip_bomb(400 * MB)  # built before measuring: it is the simulator's memory
    tracemalloc.start()
    try:
        with client(sim_server.url, max_bytes=32 * MB) as api:
            with pytest.raises(upstream.TooLarge) as info:
                api.get_job(job_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value) == "Perplexity's answer is over the 32 MB limit."
    assert peak < 100 * MB, f"peak {peak / MB:.0f} MB"


def test_the_list_endpoint_has_the_same_cap(sim_server, simulator):
    simulator.inject("oversize", endpoint="list", size=2 * MB, declare_length=False)
    with client(sim_server.url, max_bytes=1 * MB) as api, pytest.raises(upstream.TooLarge):
        api.list_jobs()


def test_a_small_gzip_answer_is_read_normally(sim_server, simulator):
    simulator.inject("gzip_bomb", endpoint="get", size=4096)
    with client(sim_server.url) as api:
        job, text = api.get_job("bomb")
    # It inflated to 4 KB, well within the cap, and was read as any answer is.
    assert job.id == "bomb" and job.status == "COMPLETED" and len(text) > 4096


@pytest.mark.django_db
def test_a_job_over_the_cap_stops_polling_with_a_sentence_and_archives_nothing(
    sim_server, simulator, owner, settings
):
    settings.SONARWEB_MAX_RESPONSE_BYTES = 32 * MB
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)
    simulator.inject("oversize", endpoint="get", job_id=job_id, size=400 * MB, times=None)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    refresh_if_due(tracked)
    assert tracked.badge_status == "ERROR" and not tracked.is_polling
    assert tracked.note == ("Perplexity's answer is 400 MB, over the 32 MB limit. Polling stopped.")
    assert not AnswerArchive.objects.exists()


# -- characters ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_nul_and_lone_surrogates_are_fitted_and_the_raw_json_kept(
    sim_server, simulator, owner, owner_client
):
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, words=200)
    simulator.inject("unstorable_text", endpoint="get", job_id=job_id)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    refresh_if_due(tracked)
    assert tracked.has_answer, tracked.note
    assert tracked.model == "sonar-deep-research"
    archive = AnswerArchive.objects.get(tracked=tracked)
    # Kept exactly as received: the escapes are ASCII text in the JSON.
    assert "\\u0000" in archive.raw_json and "\\ud800" in archive.raw_json
    for text in (archive.rendered_html, archive.markdown):
        assert "\x00" not in text and "NUL here: and a lone surrogate here: \ufffd." in text
    page = owner_client.get(f"/r/{tracked.slug}/")
    assert page.status_code == 200 and "lone surrogate" in page.content.decode()
    assert owner_client.get(f"/r/{tracked.slug}/status/").status_code == 200


@pytest.mark.django_db
def test_a_nul_in_a_failed_job_and_in_list_summaries_is_stored(sim_server, simulator, owner):
    from sonarweb.tracker.following.refresher import run_once

    failed = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, outcome="FAILED")
    running = simulator.add_job(OWNER_KEY)
    simulator.inject("unstorable_text", times=None)
    for job_id in (failed, running):
        TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    run_once()
    done = TrackedRequest.objects.get(request_id=failed)
    assert done.status == "FAILED" and "\x00" not in done.error_message
    assert "\ufffd" in done.error_message
    listed = TrackedRequest.objects.get(request_id=running)
    assert listed.status == "IN_PROGRESS" and listed.model == "sonar-deep-research"


@pytest.mark.django_db
def test_utf8_labelled_as_latin1_is_archived_as_utf8(sim_server, simulator, owner):
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, words=100)
    simulator.inject("wrong_charset", endpoint="get", job_id=job_id)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    refresh_if_due(tracked)
    archive = AnswerArchive.objects.get(tracked=tracked)
    assert faults.NON_ASCII in archive.raw_json
    assert faults.NON_ASCII.strip() in archive.markdown
    assert "Ã" not in archive.markdown, "no mojibake"


@pytest.mark.django_db
def test_an_overlong_model_is_cut_to_its_column_when_polled(sim_server, simulator, owner):
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)
    simulator.inject("long_model", endpoint="get", job_id=job_id)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    refresh_if_due(tracked)
    assert tracked.has_answer and tracked.model == faults.LONG_MODEL[:64]


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [*faults.EXTREME_RETRY_AFTER, "0", "12", "9" * 400])
def test_any_retry_after_is_clamped_to_the_backoff_range(value):
    wait = parse_retry_after(value)
    assert wait is None or 0 <= wait <= MAX_BACKOFF_SECONDS
    assert 0 < budget.pause_seconds(wait) <= MAX_BACKOFF_SECONDS


@pytest.mark.django_db
@pytest.mark.parametrize("value", faults.EXTREME_RETRY_AFTER)
def test_a_429_with_an_extreme_retry_after_records_its_pause(sim_server, simulator, owner, value):
    job_id = simulator.add_job(OWNER_KEY)
    simulator.inject("rate_limit", endpoint="get", retry_after=value)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    now = timezone.now()
    refresh_if_due(tracked, now=now)
    key = ApiKey.objects.get(user=owner)
    assert key.paused_until is not None
    assert key.paused_until <= timezone.now() + timedelta(seconds=MAX_BACKOFF_SECONDS + 1)
    assert tracked.is_polling
    assert tracked.next_poll_at <= now + timedelta(seconds=MAX_BACKOFF_SECONDS + 1)


def test_the_simulator_sends_retry_after_as_given(sim_server, simulator):
    import httpx

    simulator.inject("rate_limit", endpoint="list", retry_after="1e20")
    response = httpx.get(
        f"{sim_server.url}/v1/async/sonar", headers={"Authorization": f"Bearer {OWNER_KEY}"}
    )
    assert response.status_code == 429 and response.headers["Retry-After"] == "1e20"
    assert json.loads(response.content)["detail"]
