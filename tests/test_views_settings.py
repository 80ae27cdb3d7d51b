from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sonarweb.tracker.models import ApiKey, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY

pytestmark = pytest.mark.django_db


def test_settings_form_is_labelled_api_key(member_client):
    html = member_client.get("/settings/").content.decode()
    assert re.search(r'<label for="id_api_key">API key</label>', html)
    assert 'type="password"' in html


def test_saving_checks_upstream_once_and_stores_encrypted(
    member_client, member, sim_server, simulator, caplog
):
    caplog.set_level(logging.DEBUG)
    response = member_client.post("/settings/", {"api_key": f"  {MEMBER_KEY} "})
    assert response.status_code == 303
    assert simulator.calls.count(endpoint="models") == 1
    key = ApiKey.objects.get(user=member)
    assert MEMBER_KEY not in key.encrypted
    assert key.reveal() == MEMBER_KEY
    page = member_client.get("/settings/").content.decode()
    assert "pplx-…c3d4" in page
    assert MEMBER_KEY not in page
    assert MEMBER_KEY not in caplog.text


def test_rejected_key_is_a_form_error_and_not_saved(member_client, member, sim_server):
    response = member_client.post("/settings/", {"api_key": "pplx-notknown00000000000"})
    assert response.status_code == 422
    assert "rejected this key" in response.content.decode()
    assert "pplx-notknown00000000000" not in response.content.decode()
    assert not ApiKey.objects.filter(user=member).exists()


def test_network_error_saves_with_warning(member_client, member, settings):
    settings.PERPLEXITY_API_BASE = "http://127.0.0.1:9"
    response = member_client.post("/settings/", {"api_key": MEMBER_KEY}, follow=True)
    assert "could not be checked" in response.content.decode()
    assert ApiKey.objects.get(user=member).last4 == "c3d4"


@pytest.mark.parametrize("bad", ["", "short", "has space inside", "x" * 201])
def test_malformed_keys_never_reach_upstream(member_client, sim_server, simulator, bad):
    response = member_client.post("/settings/", {"api_key": bad})
    assert response.status_code == 422
    assert simulator.calls.count() == 0
    # The page opens on the field to fix, described by its error.
    field = re.search(r"<input[^>]*name=\"api_key\"[^>]*>", response.content.decode()).group(0)
    assert "autofocus" in field and 'aria-invalid="true"' in field
    assert 'id="id_api_key_error"' in response.content.decode()


def test_replace_and_remove(owner_client, owner, sim_server):
    owner_client.post("/settings/", {"api_key": MEMBER_KEY})
    assert ApiKey.objects.get(user=owner).last4 == "c3d4"
    # Without JavaScript, Remove key leads to a page that asks first and changes nothing.
    ask = owner_client.get("/settings/key/delete/")
    assert ask.status_code == 200
    assert "Remove your API key?" in ask.content.decode() and "pplx-…c3d4" in ask.content.decode()
    assert ApiKey.objects.filter(user=owner).exists()
    response = owner_client.post("/settings/key/delete/")
    assert response.status_code == 303
    assert not ApiKey.objects.filter(user=owner).exists()
    assert "No key saved" in owner_client.get("/settings/").content.decode()


def test_replacing_an_invalid_key_resumes_polling(owner_client, owner, sim_server):
    ApiKey.objects.filter(user=owner).update(invalid_since="2026-01-01T00:00:00Z")
    tracked = TrackedRequest.objects.create(
        request_id="job-1", added_by=owner, state="KEY_INVALID", next_poll_at=None
    )
    assert "rejected your API key" in owner_client.get("/").content.decode()
    owner_client.post("/settings/", {"api_key": OWNER_KEY})
    tracked.refresh_from_db()
    assert tracked.is_polling and tracked.state == "PENDING"
    assert not ApiKey.objects.get(user=owner).is_invalid


def test_csrf_is_enforced(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post("/settings/", {"api_key": MEMBER_KEY}).status_code == 403
    assert client.post("/", {"request_id": "abc"}).status_code == 403


def test_key_is_not_in_admin_pages(owner):
    admin = User.objects.create_superuser("root", "root@example.com", "pw-0123456789-x")
    client = Client()
    client.force_login(admin)
    key = ApiKey.objects.get(user=owner)
    html = client.get(f"/admin/tracker/apikey/{key.pk}/change/").content.decode()
    assert OWNER_KEY not in html and key.encrypted not in html
