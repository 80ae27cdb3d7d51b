"""The audit trail: what is recorded, where it shows (and where it never does), expiry
sweeps and pruning."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessLog
from django.contrib.auth.models import User
from django.utils import timezone

from sonarweb.accounts import audit as team_audit
from sonarweb.accounts.models import AuditEvent
from sonarweb.tracker import audit
from sonarweb.tracker.following.polling import refresh_if_due
from sonarweb.tracker.models import ShareLink, TrackedRequest

from .conftest import OWNER_KEY
from .team_helpers import make_staff, signed_in

pytestmark = pytest.mark.django_db


def completed(simulator, owner) -> TrackedRequest:
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner)
    refresh_if_due(tracked)
    tracked.refresh_from_db()
    assert tracked.status == "COMPLETED"
    return tracked


def actions() -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.order_by("at", "id").values_list("actor_name", "action", "detail")
    )


def trail(html: str) -> str:
    found = re.search(r'<section class="card no-print" id="history".*?</section>', html, re.S)
    return found.group(0) if found else ""


def test_link_creation_and_revocation_are_recorded(
    owner_client, member_client, owner, member, sim_server, simulator
):
    tracked = completed(simulator, owner)
    owner_client.post(f"/r/{tracked.slug}/share/", {"expires": "never"})
    member_client.post(f"/r/{tracked.slug}/share/", {"expires": "7"})
    link = ShareLink.objects.get(created_by=owner)
    member_client.post(f"/links/{link.pk}/revoke/")
    member_client.post(f"/links/{link.pk}/revoke/")  # a second click records nothing
    recorded = actions()
    assert recorded[0] == ("olivia", "link_created", "Never expires.")
    assert recorded[1][:2] == ("mateo", "link_created")
    assert recorded[1][2].startswith("Expires ")
    assert recorded[2] == ("mateo", "link_revoked", "")
    assert len(recorded) == 3
    event = AuditEvent.objects.get(action="link_revoked")
    assert event.share_link == link and event.tracked == tracked
    assert event.request_id == tracked.request_id


def test_retitling_is_recorded(member_client, owner, member):
    tracked = TrackedRequest.objects.create(request_id="r-1", added_by=owner, question="Q?")
    member_client.post(f"/r/{tracked.slug}/title/", {"title": "Battery study", "next": "/"})
    member_client.post(f"/r/{tracked.slug}/title/", {"title": "", "next": "/"})
    assert actions() == [
        ("mateo", "retitled", "Battery study"),
        ("mateo", "retitled", "(cleared)"),
    ]


def test_imports_are_recorded_per_request(owner_client, owner, sim_server, simulator):
    ids = [simulator.add_job(OWNER_KEY) for _ in range(3)]
    TrackedRequest.objects.create(request_id=ids[0], added_by=owner)
    response = owner_client.post("/import/", {"ids": ids})
    assert response.status_code == 303
    events = AuditEvent.objects.filter(action="imported")
    assert sorted(e.request_id for e in events) == sorted(ids[1:])
    assert all(e.actor == owner and e.tracked is not None for e in events)


def test_history_keeps_names_when_members_and_requests_are_removed(owner, member):
    tracked = TrackedRequest.objects.create(request_id="r-1", added_by=owner)
    audit.record(member, "retitled", tracked=tracked, detail="New")
    member.delete()
    tracked.delete()
    event = AuditEvent.objects.get()
    assert event.actor is None and event.actor_name == "mateo"
    assert event.tracked is None and event.request_id == "r-1"


def test_unknown_actions_are_refused(owner):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(owner, "deleted-everything")


def test_expired_links_are_recorded_once_naming_who_chose_the_expiry(
    owner, member, sim_server, simulator
):
    tracked = completed(simulator, owner)
    now = timezone.now()
    expired = ShareLink.objects.create(
        tracked=tracked, created_by=member, expires_at=now - timedelta(minutes=5)
    )
    ShareLink.objects.create(tracked=tracked, created_by=owner, expires_at=now + timedelta(days=1))
    ShareLink.objects.create(tracked=tracked, created_by=owner)
    ShareLink.objects.create(
        tracked=tracked,
        created_by=owner,
        expires_at=now - timedelta(days=1),
        revoked_at=now - timedelta(days=2),
    )
    assert audit.record_expired_links(now) == 1
    assert audit.record_expired_links(now) == 0
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.share_link) == ("link_expired", member, expired)
    assert event.detail.startswith("Expired ")
    # A link that expired before the trail's memory is not recorded as news.
    ShareLink.objects.create(
        tracked=tracked, created_by=owner, expires_at=now - timedelta(days=400)
    )
    assert audit.record_expired_links(now) == 0


def test_prune_forgets_what_is_older_than_a_year(owner):
    now = timezone.now()
    old = audit.record(owner, "retitled", detail="old")
    AuditEvent.objects.filter(pk=old.pk).update(at=now - timedelta(days=366))
    audit.record(owner, "retitled", detail="recent")
    for days in (400, 3):
        log = AccessLog.objects.create(username="olivia", ip_address="127.0.0.1", path_info="/")
        # attempt_time is set on creation; move it back.
        AccessLog.objects.filter(pk=log.pk).update(attempt_time=now - timedelta(days=days))
    assert team_audit.prune(now) == 2
    assert list(AuditEvent.objects.values_list("detail", flat=True)) == ["recent"]
    assert AccessLog.objects.count() == 1


def test_trail_shows_to_staff_and_the_adder_only(
    owner_client, member_client, owner, member, sim_server, simulator
):
    tracked = completed(simulator, owner)
    member_client.post(f"/r/{tracked.slug}/share/", {"expires": "never"})
    staff_client = signed_in(make_staff())
    for client in (owner_client, staff_client):
        history = trail(client.get(f"/r/{tracked.slug}/").content.decode())
        assert "mateo created a public link" in history
        assert f'href="/r/{tracked.slug}/remove/"' in history
    page = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert trail(page) == "" and "created a public link" not in page


def test_trail_is_never_on_public_pages(owner_client, owner, sim_server, simulator):
    tracked = completed(simulator, owner)
    owner_client.post(f"/r/{tracked.slug}/share/", {"expires": "never"})
    link = ShareLink.objects.get()
    for client in (owner_client, signed_in(make_staff())):
        html = client.get(f"/s/{link.token}/").content.decode()
        assert "History" not in html and "created a public link" not in html
        assert "olivia" not in html


def test_a_new_event_replaces_the_browsers_copy_of_the_permalink(
    owner_client, owner, sim_server, simulator
):
    tracked = completed(simulator, owner)
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    url = f"/r/{tracked.slug}/"
    first = owner_client.get(url).content.decode()
    assert "let a public link expire" not in first
    etag = owner_client.get(url)["ETag"]
    assert owner_client.get(url, headers={"if-none-match": etag}).status_code == 304
    # Expiry happens with nobody acting: only the sweep's event changes the row.
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    audit.record_expired_links(timezone.now())
    again = owner_client.get(url, headers={"if-none-match": etag})
    assert again.status_code == 200
    assert "olivia let a public link expire" in again.content.decode()


def test_links_page_shows_link_history_to_every_member(
    member_client, owner_client, owner, sim_server, simulator
):
    tracked = completed(simulator, owner)
    owner_client.post(f"/r/{tracked.slug}/share/", {"expires": "never"})
    link = ShareLink.objects.get()
    owner_client.post(f"/links/{link.pk}/revoke/")
    audit.record(owner, "retitled", tracked=tracked, detail="not a link event")
    html = member_client.get("/links/").content.decode()
    history = re.search(r'id="link-history".*?</section>', html, re.S).group(0)
    assert "olivia created a public link" in history and "olivia revoked a public link" in history
    assert f'href="/r/{tracked.slug}/"' in history
    assert "not a link event" not in history


def test_admin_lists_the_trail_read_only(owner):
    audit.record(owner, "retitled", detail="In the admin")
    root = User.objects.create_superuser("root", "root@example.com", "x" * 20)
    client = signed_in(root)
    response = client.get("/admin/accounts/auditevent/")
    assert response.status_code == 200 and b"In the admin" in response.content
    event = AuditEvent.objects.get()
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert client.post(f"/admin/accounts/auditevent/{event.pk}/delete/").status_code == 403
    assert client.get("/admin/accounts/invitation/").status_code == 200
