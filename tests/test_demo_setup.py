from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from sonarweb.simulator.demo import DEMO_KEY, DEMO_TRACKED
from sonarweb.tracker.models import ApiKey, TrackedRequest

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    return re.search(r"password: (\S+)", out.getvalue()).group(1)


def sign_in(password: str):
    # Sign-in throttling counts per client, so authentication needs the request.
    return authenticate(
        RequestFactory().post("/accounts/login/"), username="demo", password=password
    )


def test_demo_user_key_and_sample_jobs_are_ready_and_reset_each_run():
    password = run()
    user = sign_in(password)
    assert user is not None and user.is_staff
    assert ApiKey.objects.get(user=user).reveal() == DEMO_KEY
    ids = {job.id for job in DEMO_TRACKED}
    assert set(TrackedRequest.objects.values_list("request_id", flat=True)) == ids
    TrackedRequest.objects.update(status="COMPLETED", next_poll_at=None)

    second = run()
    assert second != password
    assert sign_in(password) is None
    assert TrackedRequest.objects.count() == len(ids)
    assert all(t.is_polling and not t.status for t in TrackedRequest.objects.all())
