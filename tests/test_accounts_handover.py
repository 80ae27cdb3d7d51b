"""Tracking an id whose polling stopped because the adder's key could not see it tries the
member's own key (one GET, against the real simulator over HTTP)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from sonarweb.accounts.models import AuditEvent
from sonarweb.tracker.models import ApiKey, AppState, TrackedRequest, UpstreamStatus

from .conftest import MEMBER_KEY, OWNER_KEY, make_member
from .team_helpers import signed_in

pytestmark = pytest.mark.django_db


def squatted(simulator, member) -> TrackedRequest:
    """The owner's job, tracked first by a member whose key cannot see it."""
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=3600)
    return TrackedRequest.objects.create(
        request_id=job_id,
        added_by=member,
        state=AppState.NOT_FOUND,
        next_poll_at=None,
        not_found_strikes=2,
        poll_failures=2,
        note="Perplexity does not know this request id (checked twice).",
    )


def track(client: Client, request_id: str):
    return client.post("/", {"request_id": request_id}, follow=True)


@pytest.fixture
def mila(db):
    """A member whose key cannot see the owner's jobs."""
    return make_member("mila", MEMBER_KEY)


def test_the_owners_key_takes_the_row_over(owner, owner_client, mila, sim_server, simulator):
    row = squatted(simulator, mila)
    slug = row.slug
    simulator.reset_calls()
    response = track(owner_client, row.request_id)
    assert response.redirect_chain[0] == (f"/r/{slug}/", 303)
    assert b"Your API key can see this job, so the request is now yours" in response.content
    assert simulator.calls.count(endpoint="get", job_id=row.request_id) >= 1
    row.refresh_from_db()
    assert row.slug == slug and row.added_by == owner
    assert row.is_polling and row.poll_failures == 0 and row.not_found_strikes == 0
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.tracked) == (owner, "claimed", row)


def test_a_row_stopped_for_a_deactivated_adder_moves_too(
    owner, owner_client, mila, sim_server, simulator
):
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=3600)
    row = TrackedRequest.objects.create(
        request_id=job_id, added_by=mila, state=AppState.KEY_INVALID, next_poll_at=None
    )
    response = track(owner_client, job_id)
    assert b"the request is now yours" in response.content
    row.refresh_from_db()
    assert row.added_by == owner and row.state == AppState.PENDING


def test_a_key_that_cannot_see_it_either_leaves_the_row(mila, sim_server, simulator):
    row = squatted(simulator, mila)
    other = signed_in(make_member("nia", "pplx-nia00000000000000000000e5f6"))
    simulator.add_key("pplx-nia00000000000000000000e5f6")
    response = track(other, row.request_id)
    assert b"Your API key cannot see this job either, so it stays with mila" in response.content
    row.refresh_from_db()
    assert row.added_by == mila and row.state == AppState.NOT_FOUND and not row.is_polling
    assert not AuditEvent.objects.exists()


def test_a_member_without_a_key_is_told_to_save_one(member_client, mila, sim_server, simulator):
    row = squatted(simulator, mila)
    simulator.reset_calls()
    response = track(member_client, row.request_id)
    assert b"polling stopped because mila&#x27;s API key could not see it" in response.content
    assert b"Save your own API key in Settings" in response.content
    assert len(simulator.calls) == 0


def test_a_rejected_key_is_not_tried(owner, owner_client, mila, sim_server, simulator):
    row = squatted(simulator, mila)
    ApiKey.objects.filter(user=owner).update(invalid_since=timezone.now())
    simulator.reset_calls()
    response = track(owner_client, row.request_id)
    assert b"Perplexity rejected your key too" in response.content
    assert len(simulator.calls) == 0


@pytest.mark.parametrize(
    ("fault", "sentence"),
    [
        ("rate_limit", b"Perplexity is rate-limiting your API key, so it could not be tried."),
        ("server_error", b"Your API key could not be tried on this request"),
    ],
)
def test_upstream_trouble_is_a_sentence_and_leaves_the_row(
    owner_client, mila, sim_server, simulator, fault, sentence
):
    row = squatted(simulator, mila)
    simulator.inject(fault, endpoint="get", times=5)
    response = track(owner_client, row.request_id)
    assert response.status_code == 200 and sentence in response.content
    row.refresh_from_db()
    assert row.added_by == mila and row.state == AppState.NOT_FOUND


def test_a_revoked_owner_key_is_marked_invalid(owner, owner_client, mila, sim_server, simulator):
    row = squatted(simulator, mila)
    simulator.revoke_key(OWNER_KEY)
    response = track(owner_client, row.request_id)
    assert b"Perplexity rejected your API key" in response.content
    assert ApiKey.objects.get(user=owner).is_invalid


@pytest.mark.parametrize("kind", ["running", "completed", "failed-not-found"])
def test_rows_that_are_not_stopped_for_their_key_are_shared_as_before(
    owner, member, member_client, sim_server, simulator, kind
):
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=3600)
    fields = {
        "running": {"status": UpstreamStatus.IN_PROGRESS},
        "completed": {"status": UpstreamStatus.COMPLETED, "next_poll_at": None},
        "failed-not-found": {
            "status": UpstreamStatus.FAILED,
            "state": AppState.NOT_FOUND,
            "next_poll_at": None,
        },
    }[kind]
    row = TrackedRequest.objects.create(request_id=job_id, added_by=owner, **fields)
    key = ApiKey(user=member)
    key.set_secret(MEMBER_KEY)
    key.save()
    simulator.reset_calls()
    response = track(member_client, job_id)
    assert b"That request is already tracked; here it is." in response.content
    # The member's key was not tried (the permalink may poll with the owner's).
    assert [c for c in simulator.calls if c.key_last4 == MEMBER_KEY[-4:]] == []
    row.refresh_from_db()
    assert row.added_by == owner
