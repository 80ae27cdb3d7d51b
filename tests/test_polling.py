"""Coalesced polling against the simulator over real HTTP."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from sonarweb.answers.render import RENDER_VERSION
from sonarweb.tracker.following.polling import claim, refresh_if_due, resume_for_user
from sonarweb.tracker.models import AnswerArchive, ApiKey, TrackedRequest

from .conftest import OWNER_KEY

pytestmark = pytest.mark.django_db


def track(simulator, owner, **job) -> TrackedRequest:
    job_id = simulator.add_job(OWNER_KEY, **job)
    return TrackedRequest.objects.create(request_id=job_id, added_by=owner)


def test_claim_is_granted_once_per_interval(sim_server, simulator, owner):
    tracked = track(simulator, owner)
    now = timezone.now()
    assert claim(tracked, now)
    assert not claim(tracked, now)
    assert not claim(tracked, now + timedelta(seconds=30))


def test_many_viewers_make_one_upstream_call(sim_server, simulator, owner):
    tracked = track(simulator, owner)
    now = timezone.now()
    for _ in range(20):
        viewer_copy = TrackedRequest.objects.get(pk=tracked.pk)
        refresh_if_due(viewer_copy, now=now)
    assert simulator.calls.count(endpoint="get") == 1
    tracked.refresh_from_db()
    assert tracked.status == "IN_PROGRESS"
    assert tracked.next_poll_at == now + timedelta(seconds=3)
    # Due again one interval later: exactly one more call.
    refresh_if_due(tracked, now=now + timedelta(seconds=3))
    assert simulator.calls.count(endpoint="get") == 2


def test_completed_answer_is_archived_once_and_never_polled_again(sim_server, simulator, owner):
    tracked = track(simulator, owner, run_seconds=0, queue_seconds=0)
    refresh_if_due(tracked)
    tracked.refresh_from_db()
    assert tracked.status == "COMPLETED" and tracked.has_answer
    assert tracked.next_poll_at is None and tracked.claimed_by == ""
    archive = AnswerArchive.objects.get(tracked=tracked)
    assert f'"{tracked.request_id}"' in archive.raw_json
    assert archive.rendered_html and archive.markdown
    assert archive.render_version == RENDER_VERSION
    assert archive.sha256 == hashlib.sha256(archive.raw_json.encode()).hexdigest()
    assert tracked.total_cost is not None and tracked.total_cost > 0
    refresh_if_due(tracked, now=timezone.now() + timedelta(days=1))
    assert simulator.calls.count(endpoint="get") == 1
    assert AnswerArchive.objects.get(tracked=tracked).raw_json == archive.raw_json
    assert not tracked.is_polling


def test_failed_job_stores_error_message(sim_server, simulator, owner):
    tracked = track(
        simulator, owner, run_seconds=0, queue_seconds=0, outcome="FAILED", error_message="Boom."
    )
    refresh_if_due(tracked)
    tracked.refresh_from_db()
    assert tracked.status == "FAILED"
    assert tracked.error_message == "Boom."
    assert not tracked.is_polling


@pytest.mark.parametrize("kind", ["server_error", "not_json", "list_instead_of_job", "slow"])
def test_transient_trouble_keeps_last_state_and_backs_off(sim_server, simulator, owner, kind):
    tracked = track(simulator, owner)
    now = timezone.now()
    refresh_if_due(tracked, now=now)
    assert tracked.status == "IN_PROGRESS"
    simulator.inject(kind, endpoint="get", delay=3)
    later = now + timedelta(seconds=3)
    refresh_if_due(tracked, now=later)
    tracked.refresh_from_db()
    assert tracked.status == "IN_PROGRESS"
    assert tracked.poll_failures == 1
    assert tracked.note
    assert tracked.next_poll_at >= later + timedelta(seconds=1.5)
    assert tracked.next_poll_at <= later + timedelta(seconds=3)


def test_rate_limit_honours_retry_after(sim_server, simulator, owner):
    tracked = track(simulator, owner)
    simulator.inject("rate_limit", endpoint="get", retry_after=40)
    now = timezone.now()
    refresh_if_due(tracked, now=now)
    tracked.refresh_from_db()
    assert tracked.badge_status == "PENDING"
    assert tracked.next_poll_at >= now + timedelta(seconds=40)
    assert "rate" in tracked.note.lower()


def test_errors_without_any_status_become_error_state(sim_server, simulator, owner):
    tracked = track(simulator, owner)
    simulator.inject("server_error", endpoint="get", times=3)
    now = timezone.now()
    for step in range(3):
        refresh_if_due(tracked, now=now + timedelta(hours=step))
    assert tracked.badge_status == "ERROR"
    assert tracked.is_polling


def test_not_found_is_confirmed_by_a_second_call(sim_server, simulator, owner):
    tracked = TrackedRequest.objects.create(request_id="missing-job", added_by=owner)
    now = timezone.now()
    refresh_if_due(tracked, now=now)
    assert tracked.badge_status == "PENDING"
    assert tracked.is_polling
    refresh_if_due(tracked, now=now + timedelta(seconds=3))
    assert tracked.badge_status == "NOT_FOUND"
    assert not tracked.is_polling
    assert simulator.calls.count(endpoint="get") == 2


def test_rejected_key_stops_polling_until_replaced(sim_server, simulator, owner):
    tracked = track(simulator, owner)
    simulator.revoke_key(OWNER_KEY)
    refresh_if_due(tracked)
    tracked.refresh_from_db()
    assert tracked.badge_status == "KEY_INVALID"
    assert not tracked.is_polling
    assert ApiKey.objects.get(user=owner).is_invalid
    assert resume_for_user(owner.pk) == 1
    tracked.refresh_from_db()
    assert tracked.is_polling


def test_completed_archive_survives_a_stray_write(sim_server, simulator, owner):
    from sonarweb.perplexity.sonar import parse_job
    from sonarweb.tracker.archive.store import archive_job
    from sonarweb.tracker.following.polling import store

    tracked = track(simulator, owner, run_seconds=0, queue_seconds=0)
    refresh_if_due(tracked)
    raw = AnswerArchive.objects.get(tracked=tracked).raw_json
    store(tracked, status="IN_PROGRESS", next_poll_at=timezone.now())
    later = parse_job({"id": tracked.request_id, "status": "COMPLETED", "response": None})
    assert not archive_job(tracked, later, '{"other": true}', {"status": "COMPLETED"})
    tracked.refresh_from_db()
    assert AnswerArchive.objects.get(tracked=tracked).raw_json == raw
    assert tracked.status == "COMPLETED"
    assert not tracked.is_polling
