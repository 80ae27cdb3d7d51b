"""/team/: the member list for everyone, and staff's invitations and (de)activation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from sonarweb.accounts.models import Invitation, hash_token, new_invite_token
from sonarweb.tracker.following.polling import DEACTIVATED_NOTE
from sonarweb.tracker.following.refresher import keys_with_due_requests, orphaned_due
from sonarweb.tracker.models import AppState, TrackedRequest, UpstreamStatus

from .conftest import MEMBER_KEY, OWNER_KEY, PASSWORD, make_member
from .team_helpers import make_staff, signed_in

pytestmark = pytest.mark.django_db

STAFF_URLS = [
    "/team/invite/",
    "/team/invites/1/revoke/",
    "/team/members/1/deactivate/",
    "/team/members/1/reactivate/",
]


@pytest.fixture
def staff(db) -> User:
    return make_staff()


@pytest.fixture
def staff_client(staff):
    return signed_in(staff)


def test_anonymous_visitors_are_sent_to_sign_in(anon_client):
    for url in ["/team/", *STAFF_URLS]:
        response = anon_client.post(url) if url != "/team/" else anon_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def cell(row: str, text: str) -> bool:
    """Whether the row has a cell holding exactly ``text`` (cells carry a data-label)."""
    return re.search(rf"<td[^>]*>\s*{re.escape(text)}\s*</td>", row) is not None


def test_members_see_the_team_read_only(member_client, owner, member, staff):
    TrackedRequest.objects.create(request_id="r-1", added_by=owner)
    TrackedRequest.objects.create(request_id="r-2", added_by=owner)
    response = member_client.get("/team/")
    assert response.status_code == 200
    html = response.content.decode()
    row = re.search(rf'<tr id="member-{owner.pk}">(.*?)</tr>', html, re.S).group(1)
    assert "olivia" in row and cell(row, "2") and "Saved" in row and "Active" in row
    # Never the key, not even its last four characters.
    assert OWNER_KEY not in html and OWNER_KEY[-4:] not in html
    # No controls and no invitations for members who are not staff.
    assert "/deactivate/" not in html and "Invite someone" not in html
    assert 'href="/team/"' in html  # the nav link


def test_the_team_says_whose_key_is_saved_rejected_or_missing(member_client, owner, member):
    """The keys are the tracker's: the team page reads them through the member's relation."""
    saved = make_staff("sam", MEMBER_KEY)
    TrackedRequest.objects.create(request_id="r-1", added_by=saved)
    owner.api_key.invalid_since = timezone.now()
    owner.api_key.save(update_fields=["invalid_since"])
    html = member_client.get("/team/").content.decode()

    def row(user: User) -> str:
        return re.search(rf'<tr id="member-{user.pk}">(.*?)</tr>', html, re.S).group(1)

    assert "Rejected" in row(owner)
    assert "Saved" in row(saved) and "Rejected" not in row(saved) and cell(row(saved), "1")
    assert "None" in row(member) and cell(row(member), "0")


def test_members_cannot_use_staff_actions(member_client, owner):
    invite = Invitation.objects.create(
        token_hash="x" * 64, expires_at=timezone.now() + timedelta(days=1)
    )
    for url in [
        "/team/invite/",
        f"/team/invites/{invite.pk}/revoke/",
        f"/team/members/{owner.pk}/deactivate/",
        f"/team/members/{owner.pk}/reactivate/",
    ]:
        response = member_client.post(url, {"expires": "7"})
        assert response.status_code == 403, url
        assert b"Forbidden" in response.content
    owner.refresh_from_db()
    invite.refresh_from_db()
    assert owner.is_active and invite.revoked_at is None
    assert Invitation.objects.count() == 1


def test_staff_get_and_head_only_on_the_page_post_only_on_actions(staff_client):
    assert staff_client.get("/team/").status_code == 200
    assert staff_client.head("/team/").status_code == 200
    assert staff_client.post("/team/").status_code == 405
    assert staff_client.get("/team/invite/").status_code == 405


def test_staff_create_an_invitation_shown_once_and_stored_hashed(staff_client, staff):
    response = staff_client.post("/team/invite/", {"email": "nia@example.com", "expires": "7"})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    link = re.search(r'id="invite-url"[^>]*value="([^"]+)"', html).group(1)
    token = re.fullmatch(r"http://testserver/invite/([\w-]+)/", link).group(1)
    assert len(token) >= 43  # 32 random bytes
    invite = Invitation.objects.get()
    assert invite.token_hash == hash_token(token) and token not in invite.token_hash
    assert invite.email == "nia@example.com" and invite.created_by == staff
    assert abs(invite.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    # The open invitation is listed, the link is not shown again.
    again = staff_client.get("/team/").content.decode()
    assert "nia@example.com" in again and token not in again


def test_invitation_expiry_defaults_to_seven_days_and_is_validated(staff_client):
    page = staff_client.get("/team/").content.decode()
    assert re.search(r'<option value="7" selected>7 days</option>', page)
    response = staff_client.post("/team/invite/", {"email": "not an email", "expires": "7"})
    assert response.status_code == 422 and b"valid email" in response.content
    response = staff_client.post("/team/invite/", {"expires": "365"})
    assert response.status_code == 422
    assert Invitation.objects.count() == 0
    assert staff_client.post("/team/invite/", {"expires": "1"}).status_code == 201


def test_staff_revoke_an_open_invitation(staff_client):
    invite = Invitation.objects.create(
        token_hash=hash_token("t"), expires_at=timezone.now() + timedelta(days=1)
    )
    response = staff_client.post(f"/team/invites/{invite.pk}/revoke/", follow=True)
    assert b"Invitation revoked" in response.content
    invite.refresh_from_db()
    first = invite.revoked_at
    assert first is not None
    response = staff_client.post(f"/team/invites/{invite.pk}/revoke/", follow=True)
    assert b"already used, revoked or expired" in response.content
    invite.refresh_from_db()
    assert invite.revoked_at == first
    assert staff_client.post("/team/invites/999/revoke/").status_code == 404
    assert b"No open invitations" in staff_client.get("/team/").content


def test_deactivation_signs_out_and_stops_polling(staff_client, owner, simulator, sim_server):
    owner_browser = signed_in(owner)
    other_browser = signed_in(owner)
    bystander = signed_in(make_staff("bea"))
    running = TrackedRequest.objects.create(request_id="run-1", added_by=owner)
    done = TrackedRequest.objects.create(
        request_id="done-1", added_by=owner, status=UpstreamStatus.COMPLETED, next_poll_at=None
    )
    gone = TrackedRequest.objects.create(
        request_id="gone-1", added_by=owner, state=AppState.NOT_FOUND, next_poll_at=None
    )
    sessions_before = Session.objects.count()

    response = staff_client.post(f"/team/members/{owner.pk}/deactivate/", follow=True)
    assert response.status_code == 200
    assert b"olivia is deactivated and signed out (2 sessions ended)" in response.content
    assert b"Polling of 1 request they added has stopped." in response.content

    owner.refresh_from_db()
    assert not owner.is_active
    assert Session.objects.count() == sessions_before - 2
    for browser in (owner_browser, other_browser):
        response = browser.get("/")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/")
    assert bystander.get("/").status_code == 200

    running.refresh_from_db()
    assert running.state == AppState.KEY_INVALID and running.next_poll_at is None
    assert running.note == DEACTIVATED_NOTE
    assert running.badge_status == AppState.KEY_INVALID
    done.refresh_from_db()
    gone.refresh_from_db()
    assert done.status == UpstreamStatus.COMPLETED and done.note == ""
    assert gone.state == AppState.NOT_FOUND and gone.note == ""
    # The permalink says why nothing moves.
    page = bystander.get(f"/r/{running.slug}/").content.decode()
    assert DEACTIVATED_NOTE in page


def test_refresher_never_polls_with_a_deactivated_members_key(staff_client, owner):
    row = TrackedRequest.objects.create(request_id="run-1", added_by=owner)
    assert [k.user_id for k in keys_with_due_requests(timezone.now())] == [owner.pk]
    staff_client.post(f"/team/members/{owner.pk}/deactivate/")
    # Even a row some poll made due again meanwhile.
    TrackedRequest.objects.filter(pk=row.pk).update(next_poll_at=timezone.now())
    assert keys_with_due_requests(timezone.now()) == []
    assert [t.pk for t in orphaned_due(timezone.now())] == [row.pk]


def test_reactivation_with_a_working_key_resumes_polling(staff_client, owner):
    row = TrackedRequest.objects.create(request_id="run-1", added_by=owner)
    staff_client.post(f"/team/members/{owner.pk}/deactivate/")
    response = staff_client.post(f"/team/members/{owner.pk}/reactivate/", follow=True)
    assert b"olivia can sign in again. Polling of 1 request they added has resumed." in (
        response.content
    )
    owner.refresh_from_db()
    row.refresh_from_db()
    assert owner.is_active
    assert row.state == AppState.PENDING and row.next_poll_at is not None and row.note == ""


def test_reactivation_without_a_key_waits_for_one_saved_in_settings(
    staff_client, member, sim_server
):
    row = TrackedRequest.objects.create(request_id="run-1", added_by=member)
    staff_client.post(f"/team/members/{member.pk}/deactivate/")
    response = staff_client.post(f"/team/members/{member.pk}/reactivate/", follow=True)
    assert b"Their requests resume when they have a working API key saved." in response.content
    row.refresh_from_db()
    assert row.state == AppState.KEY_INVALID and row.next_poll_at is None

    response = signed_in(member).post("/settings/", {"api_key": MEMBER_KEY})
    assert response.status_code == 303
    row.refresh_from_db()
    assert row.state == AppState.PENDING and row.next_poll_at is not None


def test_staff_cannot_deactivate_themselves_or_other_staff(staff_client, staff):
    other = make_staff("bea")
    response = staff_client.post(f"/team/members/{staff.pk}/deactivate/", follow=True)
    assert b"You cannot deactivate your own account." in response.content
    assert staff_client.post(f"/team/members/{other.pk}/deactivate/").status_code == 403
    staff.refresh_from_db()
    other.refresh_from_db()
    assert staff.is_active and other.is_active
    page = staff_client.get("/team/").content.decode()
    assert f"/team/members/{other.pk}/deactivate/" not in page
    assert f"/team/members/{staff.pk}/deactivate/" not in page


def test_a_superuser_can_deactivate_staff(staff):
    root = User.objects.create_superuser("root", "root@example.com", "x" * 20)
    client = signed_in(root)
    assert client.post(f"/team/members/{staff.pk}/deactivate/").status_code == 303
    staff.refresh_from_db()
    assert not staff.is_active
    assert client.post(f"/team/members/{staff.pk}/reactivate/").status_code == 303
    staff.refresh_from_db()
    assert staff.is_active


def test_unknown_members_are_404(staff_client):
    assert staff_client.post("/team/members/999/deactivate/").status_code == 404
    assert staff_client.post("/team/members/999/reactivate/").status_code == 404


def test_a_deactivated_member_reaches_nothing(owner, staff_client):
    browser = signed_in(owner)
    staff_client.post(f"/team/members/{owner.pk}/deactivate/")
    for url in ["/", "/team/", "/settings/", "/links/"]:
        response = browser.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url
    # Nor can they sign in again, even with the right password.
    login = browser.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert login.status_code == 200 and b"enter a correct username and password" in login.content


def test_deactivated_members_are_listed_as_such(staff_client, owner):
    staff_client.post(f"/team/members/{owner.pk}/deactivate/")
    html = staff_client.get("/team/").content.decode()
    row = re.search(rf'<tr id="member-{owner.pk}">(.*?)</tr>', html, re.S).group(1)
    assert 'data-member-status="inactive"' in row
    assert f"/team/members/{owner.pk}/reactivate/" in row


@pytest.mark.parametrize("role", ["anonymous", "member", "staff", "deactivated"])
def test_every_new_url_by_role(role, owner, member):
    """Each role on every URL the team app adds. "deactivated" is a staff member whose
    account was switched off while signed in: nothing of theirs works any more."""
    actor = make_staff("sam")
    if role == "anonymous":
        client = Client()
    elif role == "member":
        client = signed_in(member)
    else:
        client = signed_in(actor)
    if role == "deactivated":
        actor.is_active = False
        actor.save(update_fields=["is_active"])
    token = new_invite_token()
    invite = Invitation.objects.create(
        token_hash=hash_token(token), expires_at=timezone.now() + timedelta(days=1)
    )
    tracked = TrackedRequest.objects.create(request_id="r-roles", added_by=owner)
    target = make_member("tess", None)
    checks = [
        ("get", "/team/", {"member": 200, "staff": 200}),
        ("post", "/team/invite/", {"member": 403, "staff": 201}),
        ("post", f"/team/invites/{invite.pk}/revoke/", {"member": 403, "staff": 303}),
        ("post", f"/team/members/{target.pk}/deactivate/", {"member": 403, "staff": 303}),
        ("post", f"/team/members/{target.pk}/reactivate/", {"member": 403, "staff": 303}),
        ("get", f"/r/{tracked.slug}/remove/", {"member": 403, "staff": 200}),
    ]
    for method, url, expected in checks:
        response = getattr(client, method)(url, {"expires": "7"} if method == "post" else None)
        if role in ("anonymous", "deactivated"):
            assert response.status_code == 302, (role, url)
            assert response["Location"].startswith("/accounts/login/?next="), (role, url)
        else:
            assert response.status_code == expected[role], (role, url)
    # The invitation page is public: every role sees it (it was revoked by staff above).
    response = client.get(f"/invite/{token}/")
    assert response.status_code == (404 if role == "staff" else 200)
    target.refresh_from_db()
    assert target.is_active  # deactivated and reactivated by staff, untouched by others
