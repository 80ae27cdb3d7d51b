"""Several refresher processes on the same database make no call twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from sonarweb.tracker.models import ApiKey, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The test database, as a URL the child processes can open."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@" if db["USER"] else ""
    return f"postgres://{auth}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def refresher_env(sim_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=database_url(),
        PERPLEXITY_API_BASE=sim_url,
        DJANGO_SECRET_KEY=django_settings.SECRET_KEY,
        SONARWEB_ENCRYPTION_KEYS=",".join(django_settings.ENCRYPTION_KEYS),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SONARWEB_INSECURE_HTTP="1",
    )
    env.pop("DJANGO_DEBUG", None)
    return env


def test_concurrent_refreshers_share_the_work(sim_server, simulator, owner, member):
    key = ApiKey(user=member)
    key.set_secret(MEMBER_KEY)
    key.save()
    running, finished = [], []
    for user, api_key in ((owner, OWNER_KEY), (member, MEMBER_KEY)):
        for _ in range(5):
            running.append(simulator.add_job(api_key))
        for _ in range(3):
            finished.append(simulator.add_job(api_key, queue_seconds=0, run_seconds=0))
        for job_id in running[-5:] + finished[-3:]:
            TrackedRequest.objects.create(request_id=job_id, added_by=user)

    # Every row falls due at the same moment, when all processes are already looping.
    start = timezone.now() + timedelta(seconds=2)
    TrackedRequest.objects.update(next_poll_at=start)
    env = refresher_env(sim_server.url)
    command = [sys.executable, "manage.py", "refresh_requests", "--interval", "0.1"]
    procs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    # Until well past the common due time, yet before the 3 s poll interval is over.
    time.sleep(max((start - timezone.now()).total_seconds(), 0) + 2.0)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    outputs = [proc.communicate(timeout=20) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert b"Refresher stopped." in out

    assert simulator.calls.count(endpoint="list") == 2, "one list call per key"
    for job_id in finished:
        assert simulator.calls.count(endpoint="get", job_id=job_id) == 1
    for job_id in running:
        assert simulator.calls.count(endpoint="get", job_id=job_id) == 0
    assert TrackedRequest.objects.filter(request_id__in=finished, status="COMPLETED").count() == 6
    assert all(t.raw_json for t in TrackedRequest.objects.filter(request_id__in=finished))
    assert TrackedRequest.objects.filter(request_id__in=running, status="IN_PROGRESS").count() == 10
