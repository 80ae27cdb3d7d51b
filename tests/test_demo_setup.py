from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from sonarweb.simulator.demo import DEMO_AGENT_TRACKED, DEMO_KEY, sonar_archive_samples
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
    ids = {run.id for run in DEMO_AGENT_TRACKED}
    archived = {job_id for job_id, _, _ in sonar_archive_samples()}
    assert set(TrackedRequest.objects.values_list("request_id", flat=True)) == ids | archived
    runs = TrackedRequest.objects.filter(request_id__in=ids)
    runs.update(status="COMPLETED", next_poll_at=None)

    second = run()
    assert second != password
    assert sign_in(password) is None
    assert TrackedRequest.objects.count() == len(ids) + len(archived)
    assert all(t.is_polling and not t.status for t in runs.all())
    # The Sonar answers archived before the retirement: finished, readable, never polled.
    for tracked in TrackedRequest.objects.filter(request_id__in=archived):
        assert tracked.status == "COMPLETED" and tracked.has_answer
        assert not tracked.is_polling
        assert 'class="cite"' in tracked.archive.rendered_html
