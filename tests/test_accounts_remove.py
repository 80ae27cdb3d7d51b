"""/r/<slug>/remove/: staff and the adder may remove a request, after a confirmation page
that works without JavaScript; others get 403."""

from __future__ import annotations

import re

import pytest

from sonarweb.accounts.models import AuditEvent
from sonarweb.tracker.models import ShareLink, TrackedRequest

from .team_helpers import make_staff, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracked(owner) -> TrackedRequest:
    return TrackedRequest.objects.create(request_id="r-remove", added_by=owner, title="Old study")


def test_anonymous_visitors_are_sent_to_sign_in(anon_client, tracked):
    for response in (
        anon_client.get(f"/r/{tracked.slug}/remove/"),
        anon_client.post(f"/r/{tracked.slug}/remove/"),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    assert TrackedRequest.objects.filter(pk=tracked.pk).exists()


def test_other_members_get_403(member_client, tracked):
    assert member_client.get(f"/r/{tracked.slug}/remove/").status_code == 403
    assert member_client.post(f"/r/{tracked.slug}/remove/").status_code == 403
    assert TrackedRequest.objects.filter(pk=tracked.pk).exists()
    page = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "/remove/" not in page


def test_the_adder_confirms_then_removes(owner_client, owner, tracked):
    ShareLink.objects.create(tracked=tracked, created_by=owner)
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert f'href="/r/{tracked.slug}/remove/"' in page
    response = owner_client.get(f"/r/{tracked.slug}/remove/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Remove this request?" in html and "Old study" in html
    assert "its 1 active public link, which stops working at once" in html
    assert re.search(rf'<form method="post" action="/r/{tracked.slug}/remove/"', html)
    assert "csrfmiddlewaretoken" in html
    assert TrackedRequest.objects.filter(pk=tracked.pk).exists()  # GET changes nothing

    response = owner_client.post(f"/r/{tracked.slug}/remove/", follow=True)
    assert response.redirect_chain == [("/", 303)]
    assert "Removed “Old study” from the team&#x27;s list." in response.content.decode()
    assert not TrackedRequest.objects.filter(pk=tracked.pk).exists()
    assert not ShareLink.objects.exists()
    assert owner_client.get(f"/r/{tracked.slug}/").status_code == 404
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.request_id) == (owner, "removed", "r-remove")
    assert event.tracked is None and event.detail == "Old study"


def test_staff_may_remove_any_request(tracked):
    client = signed_in(make_staff())
    assert client.get(f"/r/{tracked.slug}/remove/").status_code == 200
    assert client.post(f"/r/{tracked.slug}/remove/").status_code == 303
    assert not TrackedRequest.objects.exists()
    assert AuditEvent.objects.get().actor_name == "sam"


def test_a_deactivated_adder_is_sent_to_sign_in(owner, owner_client, tracked):
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    response = owner_client.post(f"/r/{tracked.slug}/remove/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert TrackedRequest.objects.filter(pk=tracked.pk).exists()


def test_unknown_slugs_and_other_methods(owner_client, tracked):
    assert owner_client.get("/r/nope/remove/").status_code == 404
    assert owner_client.put(f"/r/{tracked.slug}/remove/").status_code == 405
    assert owner_client.delete(f"/r/{tracked.slug}/remove/").status_code == 405
