"""The background refresher against the simulator over real HTTP."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from sonarweb.tracker.following.refresher import run_once
from sonarweb.tracker.models import ApiKey, TrackedRequest, UpstreamCall

from .conftest import MEMBER_KEY, OWNER_KEY

pytestmark = pytest.mark.django_db


def track(simulator, user, key=OWNER_KEY, **job) -> TrackedRequest:
    return TrackedRequest.objects.create(request_id=simulator.add_job(key, **job), added_by=user)


def test_one_list_call_covers_all_unfinished_jobs_of_a_key(sim_server, simulator, owner):
    rows = [track(simulator, owner) for _ in range(5)]
    stats = run_once()
    assert stats.list_calls == 1 and stats.detail_calls == 0
    assert simulator.calls.count(endpoint="list") == 1
    assert simulator.calls.count(endpoint="get") == 0
    for row in rows:
        row.refresh_from_db()
        assert row.status == "IN_PROGRESS"
        assert row.is_polling


def test_rows_falling_due_apart_share_one_list_call_per_interval(sim_server, simulator, owner):
    # As jobs age their intervals grow, and viewers ask for early polls, so a key's rows fall
    # due a second apart; each must not cost a list call of its own.
    rows = [track(simulator, owner) for _ in range(4)]
    now = timezone.now()
    for offset, row in zip((0, 1, 2, 10), rows, strict=True):
        TrackedRequest.objects.filter(pk=row.pk).update(
            next_poll_at=now + timedelta(seconds=offset)
        )
    run_once(now)
    assert simulator.calls.count(endpoint="list") == 1
    later = TrackedRequest.objects.get(pk=rows[3].pk)
    assert later.next_poll_at == now + timedelta(seconds=10)  # beyond the fast interval: later
    for row in rows[:3]:
        row.refresh_from_db()
        assert row.status == "IN_PROGRESS" and row.next_poll_at >= now + timedelta(seconds=3)
    run_once(now + timedelta(seconds=1))
    run_once(now + timedelta(seconds=2))
    assert simulator.calls.count(endpoint="list") == 1


def test_detail_fetched_only_once_finished(sim_server, simulator, owner):
    running = track(simulator, owner)
    done = track(simulator, owner, queue_seconds=0, run_seconds=0)
    failed = track(simulator, owner, queue_seconds=0, run_seconds=0, outcome="FAILED")
    run_once()
    assert simulator.calls.count(endpoint="get", job_id=running.request_id) == 0
    assert simulator.calls.count(endpoint="get", job_id=done.request_id) == 1
    assert simulator.calls.count(endpoint="get", job_id=failed.request_id) == 1
    done.refresh_from_db()
    failed.refresh_from_db()
    assert done.has_answer and done.archive.rendered_html and not done.is_polling
    assert failed.status == "FAILED" and failed.error_message


def test_not_due_rows_are_left_alone(sim_server, simulator, owner):
    track(simulator, owner)
    now = timezone.now()
    run_once(now)
    run_once(now + timedelta(seconds=1))
    assert simulator.calls.count() == 1
    run_once(now + timedelta(seconds=3))
    assert simulator.calls.count() == 2


def test_list_is_followed_to_its_end_then_unlisted_jobs_are_asked_alone(
    sim_server, owner, settings
):
    from sonarweb.simulator.app import Simulator
    from sonarweb.simulator.server import serve

    # One job per page and many newer jobs: the tracked ones are on the last pages.
    sim = Simulator(
        keys=[OWNER_KEY], queue_seconds=0, run_seconds=3600, page_size=1, sonar_retired=False
    )
    old = sim.add_job(OWNER_KEY, created_ago=600)
    for _ in range(8):
        sim.add_job(OWNER_KEY)
    with serve(sim) as server:
        settings.PERPLEXITY_API_BASE = server.url
        TrackedRequest.objects.create(request_id=old, added_by=owner)
        # Not a job of this key at all: the list never shows it.
        TrackedRequest.objects.create(request_id="not-listed-anywhere", added_by=owner)
        stats = run_once()
    assert stats.list_calls == 9, "every page, to the end of the list"
    assert sim.calls.count(endpoint="get", job_id=old) == 0
    assert sim.calls.count(endpoint="get", job_id="not-listed-anywhere") == 1
    assert TrackedRequest.objects.get(request_id=old).status == "IN_PROGRESS"


def test_list_paging_stops_once_past_the_oldest_wanted_job(sim_server, owner, settings):
    from sonarweb.simulator.app import Simulator
    from sonarweb.simulator.server import serve

    sim = Simulator(
        keys=[OWNER_KEY], queue_seconds=0, run_seconds=3600, page_size=2, sonar_retired=False
    )
    for ago in range(900, 600, -30):
        sim.add_job(OWNER_KEY, created_ago=ago)  # ten older jobs, untracked
    wanted = sim.add_job(OWNER_KEY, created_ago=300)
    for _ in range(3):
        sim.add_job(OWNER_KEY)
    with serve(sim) as server:
        settings.PERPLEXITY_API_BASE = server.url
        TrackedRequest.objects.create(request_id=wanted, added_by=owner)
        now = timezone.now()
        first = run_once(now)
        # Its creation time is known now; the job it names has gone meanwhile.
        TrackedRequest.objects.filter(request_id=wanted).update(request_id="gone-" + wanted)
        second = run_once(now + timedelta(minutes=5))
    assert first.list_calls == 2, "found on the second page"
    assert second.list_calls == 3, "one page past the tracked job's creation time, no further"


def test_keys_are_worked_separately(sim_server, simulator, owner, member):
    key = ApiKey(user=member)
    key.set_secret(MEMBER_KEY)
    key.save()
    track(simulator, owner)
    track(simulator, member, key=MEMBER_KEY)
    stats = run_once()
    assert stats.keys == 2
    assert simulator.calls.count(endpoint="list") == 2


def test_a_leased_key_is_skipped(sim_server, simulator, owner):
    track(simulator, owner)
    ApiKey.objects.filter(user=owner).update(
        refresh_lease_until=timezone.now() + timedelta(minutes=1)
    )
    assert run_once().keys == 0
    assert simulator.calls.count() == 0


def test_rate_limit_pauses_the_key_until_retry_after(sim_server, simulator, owner):
    tracked = track(simulator, owner)
    simulator.inject("rate_limit", endpoint="list", retry_after=30)
    now = timezone.now()
    run_once(now)
    key = ApiKey.objects.get(user=owner)
    assert key.paused_until is not None and key.paused_until >= now + timedelta(seconds=29)
    tracked.refresh_from_db()
    assert tracked.next_poll_at >= now + timedelta(seconds=30)
    # An interactive poll during the pause makes no call either.
    from sonarweb.tracker.following.polling import refresh_if_due

    TrackedRequest.objects.filter(pk=tracked.pk).update(next_poll_at=now)
    tracked.refresh_from_db()
    refresh_if_due(tracked, now=now + timedelta(seconds=1))
    assert simulator.calls.count() == 1
    assert "slow down" in tracked.note


@pytest.mark.parametrize("kind", ["server_error", "not_json", "slow"])
def test_transient_list_faults_back_off_with_jitter(sim_server, simulator, owner, kind):
    rows = [track(simulator, owner) for _ in range(3)]
    simulator.inject(kind, endpoint="list", delay=3)
    now = timezone.now()
    stats = run_once(now)
    assert stats.errors
    waits = set()
    for row in rows:
        row.refresh_from_db()
        assert row.poll_failures == 1 and row.note
        waits.add(row.next_poll_at)
        assert now + timedelta(seconds=1.5) <= row.next_poll_at <= now + timedelta(seconds=3)
    assert len(waits) > 1, "jitter spreads the retries"


def test_answer_for_another_id_is_a_logged_transient_error(sim_server, simulator, owner, caplog):
    caplog.set_level(logging.WARNING)
    tracked = track(simulator, owner, queue_seconds=0, run_seconds=0)
    simulator.inject("list_instead_of_job", endpoint="get")
    run_once()
    tracked.refresh_from_db()
    assert not tracked.has_answer and tracked.is_polling
    assert tracked.poll_failures == 1
    assert "another document" in caplog.text
    run_once(timezone.now() + timedelta(minutes=5))
    tracked.refresh_from_db()
    assert tracked.has_answer


def test_key_that_stops_working_is_marked_and_polling_stops(
    sim_server, simulator, owner, owner_client
):
    tracked = track(simulator, owner)
    simulator.revoke_key(OWNER_KEY)
    run_once()
    key = ApiKey.objects.get(user=owner)
    assert key.is_invalid
    tracked.refresh_from_db()
    assert tracked.badge_status == "KEY_INVALID" and not tracked.is_polling
    calls = simulator.calls.count()
    run_once(timezone.now() + timedelta(hours=1))
    assert simulator.calls.count() == calls
    assert "rejected your API key" in owner_client.get("/").content.decode()
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "Replace your API key" in page


def test_expired_job_is_not_found_after_two_calls_and_archive_is_kept(
    sim_server, simulator, owner, owner_client
):
    from sonarweb.tracker.following.polling import refresh_if_due

    archived = track(simulator, owner, queue_seconds=0, run_seconds=0)
    gone = track(simulator, owner)
    refresh_if_due(archived)
    simulator.advance(8 * 86400)
    now = timezone.now()
    run_once(now)
    gone.refresh_from_db()
    assert gone.badge_status == "PENDING" or gone.status == "IN_PROGRESS"
    assert gone.is_polling and gone.not_found_strikes == 1
    run_once(now + timedelta(seconds=5))
    gone.refresh_from_db()
    assert gone.state == "NOT_FOUND" and not gone.is_polling
    # The archived answer is never polled again; a 404 for it would not erase it.
    from sonarweb.perplexity.client import NotFound
    from sonarweb.tracker.following.polling import failure_fields, store

    archived.refresh_from_db()
    raw = archived.archive.raw_json
    archived.not_found_strikes = 1
    store(archived, **failure_fields(archived, NotFound(), now))
    archived.refresh_from_db()
    assert archived.archive.raw_json == raw and archived.status == "COMPLETED"
    page = owner_client.get(f"/r/{archived.slug}/").content.decode()
    assert "no longer keeps this job" in page
    assert 'id="source-1"' in page


def test_running_unusually_long_is_flagged(owner, owner_client, settings):
    settings.SONARWEB_STUCK_AFTER_MINUTES = 30
    long_ago = timezone.now() - timedelta(minutes=31)
    tracked = TrackedRequest.objects.create(
        request_id="slow-job",
        added_by=owner,
        status="IN_PROGRESS",
        started_at=long_ago,
        upstream_created_at=long_ago,
        next_poll_at=timezone.now() + timedelta(hours=1),
    )
    assert "Running unusually long" in owner_client.get(f"/r/{tracked.slug}/").content.decode()
    TrackedRequest.objects.filter(pk=tracked.pk).update(started_at=timezone.now())
    assert "Running unusually long" not in owner_client.get(f"/r/{tracked.slug}/").content.decode()


def test_every_call_is_recorded_without_the_key(sim_server, simulator, owner):
    track(simulator, owner, queue_seconds=0, run_seconds=0)
    run_once()
    calls = list(UpstreamCall.objects.order_by("at"))
    assert [(c.endpoint, c.status) for c in calls] == [("list", 200), ("get", 200)]
    assert calls[0].key_last4 == "a1b2"
    assert all(OWNER_KEY not in str(vars(c)) for c in calls)


def test_job_completes_with_no_page_open_and_is_served_from_archive(
    sim_server, simulator, owner, member_client
):
    tracked = track(simulator, owner, queue_seconds=0, run_seconds=0)
    run_once()
    calls = simulator.calls.count()
    html = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert simulator.calls.count() == calls
    assert 'data-status="COMPLETED"' in html and 'id="source-1"' in html
