from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sonarweb.tracker.following.refresher import run_once
from sonarweb.tracker.models import TrackedRequest

from .conftest import OWNER_KEY

pytestmark = pytest.mark.django_db


def test_staff_sees_calls_and_errors_per_key(sim_server, simulator, owner):
    TrackedRequest.objects.create(request_id=simulator.add_job(OWNER_KEY), added_by=owner)
    simulator.inject("server_error", endpoint="list")
    run_once()
    staff = User.objects.create_user("sam", "sam@example.com", "x-pass-0123456789", is_staff=True)
    client = Client()
    client.force_login(staff)
    html = client.get("/staff/calls/").content.decode()
    assert "pplx-…a1b2" in html and "olivia" in html
    assert "1 calls, 1 errors" in html
    assert "ServerError" in html
    assert OWNER_KEY not in html


def test_members_who_are_not_staff_get_403(member_client, anon_client):
    assert member_client.get("/staff/calls/").status_code == 403
    assert anon_client.get("/staff/calls/").status_code == 302
