"""Edge cases of polling and refreshing: stopped rows, odd values, unreadable keys."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.sonar import parse_job
from sonarweb.tracker.following import chores, refresher
from sonarweb.tracker.following.polling import failure_fields, job_fields, refresh_if_due, store
from sonarweb.tracker.keys.upstream import note_failure
from sonarweb.tracker.models import AnswerArchive, ApiKey, TrackedRequest, UpstreamCall

from .conftest import MEMBER_KEY, OWNER_KEY

pytestmark = pytest.mark.django_db


def track(simulator, user, key=OWNER_KEY, **job) -> TrackedRequest:
    return TrackedRequest.objects.create(request_id=simulator.add_job(key, **job), added_by=user)


def test_a_stopped_unfinished_row_shows_why_not_its_last_status(
    sim_server, simulator, owner, owner_client
):
    tracked = track(simulator, owner)
    now = timezone.now()
    refresh_if_due(tracked, now=now)
    assert tracked.badge_status == "IN_PROGRESS"
    simulator.revoke_key(OWNER_KEY)
    refresh_if_due(tracked, now=now + timedelta(seconds=3))
    assert tracked.status == "IN_PROGRESS" and not tracked.is_polling
    assert tracked.badge_status == "KEY_INVALID"
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert 'data-status="KEY_INVALID"' in page and "Replace your API key" in page
    listed = owner_client.get("/?status=KEY_INVALID").content.decode()
    assert tracked.request_id in listed
    assert tracked.request_id not in owner_client.get("/?status=IN_PROGRESS").content.decode()


def test_a_good_answer_clears_an_earlier_error_state(sim_server, simulator, owner):
    tracked = track(simulator, owner)
    simulator.inject("server_error", endpoint="get", times=3)
    now = timezone.now()
    for step in range(4):
        refresh_if_due(tracked, now=now + timedelta(hours=step))
        if step == 2:
            assert tracked.badge_status == "ERROR"
    assert tracked.badge_status == "IN_PROGRESS" and tracked.state == "PENDING"


def test_values_too_large_for_their_columns_do_not_block_the_archive(sim_server, simulator, owner):
    completion = {
        "id": "c",
        "model": "m",
        "created": 1,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}}],
        "usage": {"cost": {"total_cost": 12_345_678.5}},
    }
    tracked = track(simulator, owner, queue_seconds=0, run_seconds=0, completion=completion)
    refresh_if_due(tracked)
    assert tracked.has_answer and tracked.total_cost is None
    job = parse_job({"id": "x", "status": "IN_PROGRESS", "model": "m" * 500, "created_at": 1})
    tracked = TrackedRequest.objects.create(request_id="x", added_by=owner)
    store(tracked, **job_fields(job, timezone.now(), timezone.now()))
    assert tracked.model == "m" * 64
    rejected = upstream.Rejected("Perplexity rejected the request: " + "x" * 2000, status=422)
    store(tracked, **failure_fields(tracked, rejected, timezone.now()))
    assert len(tracked.note) == 300


def test_a_rejected_get_stops_polling_with_a_sentence(owner):
    tracked = TrackedRequest.objects.create(request_id="job-x", added_by=owner)
    fields = failure_fields(tracked, upstream.Rejected(status=422), timezone.now())
    assert fields["next_poll_at"] is None and fields["state"] == "ERROR"
    assert "Polling stopped." in fields["note"]


def test_completed_without_an_answer_is_asked_again_before_archiving(sim_server, simulator, owner):
    tracked = track(simulator, owner, queue_seconds=0, run_seconds=0, completion={})
    now = timezone.now()
    for step in range(3):
        refresh_if_due(tracked, now=now + timedelta(hours=step))
        assert tracked.is_polling and not tracked.has_answer
        assert "no answer" in tracked.note
    refresh_if_due(tracked, now=now + timedelta(hours=5))
    assert tracked.status == "COMPLETED" and tracked.has_answer and not tracked.is_polling


def test_an_unreadable_key_stops_with_a_sentence_and_spares_other_keys(
    sim_server, simulator, owner, member, owner_client, settings
):
    key = ApiKey(user=member)
    key.set_secret(MEMBER_KEY)
    key.save()
    theirs = track(simulator, member, key=MEMBER_KEY)
    ours = track(simulator, owner)
    # The owner's key was encrypted with a key the server no longer has.
    ApiKey.objects.filter(user=owner).update(
        encrypted=Fernet(Fernet.generate_key()).encrypt(b"pplx-lost").decode()
    )
    refresher.run_once()
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.badge_status == "KEY_INVALID" and "can no longer be read" in ours.note
    assert theirs.status == "IN_PROGRESS"
    TrackedRequest.objects.filter(pk=ours.pk).update(next_poll_at=timezone.now(), state="PENDING")
    ApiKey.objects.filter(user=owner).update(invalid_since=None)
    assert owner_client.get(f"/r/{ours.slug}/").status_code == 200


def test_a_key_replaced_meanwhile_is_not_marked_invalid(owner):
    stale = ApiKey.objects.get(user=owner)
    fresh = ApiKey.objects.get(user=owner)
    fresh.set_secret("pplx-replaced-0000000000")
    fresh.save()
    note_failure(stale, upstream.Unauthorized())
    assert not ApiKey.objects.get(user=owner).is_invalid
    note_failure(fresh, upstream.Unauthorized())
    assert ApiKey.objects.get(user=owner).is_invalid


def test_a_lease_is_released_only_by_its_holder(owner):
    key = ApiKey.objects.get(user=owner)
    now = timezone.now()
    ours = refresher.lease_key(key, now - timedelta(minutes=5))
    assert ours is not None
    theirs = refresher.lease_key(key, now)
    assert theirs is not None
    refresher.release_key(key, ours)
    assert ApiKey.objects.get(pk=key.pk).refresh_lease_until == theirs
    refresher.release_key(key, theirs)
    assert ApiKey.objects.get(pk=key.pk).refresh_lease_until is None


def test_old_call_records_and_expired_sessions_are_pruned(owner, monkeypatch):
    key = ApiKey.objects.get(user=owner)
    now = timezone.now()
    for days in (1, 8, 30):
        UpstreamCall.objects.create(
            api_key=key, method="GET", endpoint="list", at=now - timedelta(days=days)
        )
    live, expired = SessionStore(), SessionStore()
    for session in (live, expired):
        session["colour"] = "teal"
        session.save()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=now - timedelta(seconds=1)
    )
    assert chores.run_due(now)["prune"] == 3  # two call records and a session
    assert "prune" not in chores.run_due(now + timedelta(minutes=1))  # every ten minutes
    assert UpstreamCall.objects.count() == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]


def test_a_failed_render_is_recorded_and_not_retried(
    sim_server, simulator, owner, owner_client, monkeypatch
):
    from sonarweb.answers.render import RENDER_VERSION
    from sonarweb.tracker.archive import store as archive

    def broken(*args, **kwargs):
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(archive, "render_completion", broken)
    tracked = track(simulator, owner, queue_seconds=0, run_seconds=0)
    refresh_if_due(tracked)
    stored = AnswerArchive.objects.get(tracked=tracked)
    assert stored.raw_json and stored.rendered_html == ""
    assert stored.render_version == RENDER_VERSION and "RuntimeError" in stored.render_error
    assert archive.stale_archives(10) == []
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "could not be displayed" in page
