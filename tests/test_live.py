"""The app and the simulator as real HTTP servers, spoken to over real HTTP."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from django.contrib.auth.models import User

from .conftest import OWNER_KEY, PASSWORD

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_sign_in_save_key_track_and_read(live_server, sim_server, simulator, refresher):
    User.objects.create_user("olivia", "olivia@example.com", PASSWORD)
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=2)
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        login = http.get("/accounts/login/")
        response = http.post(
            "/accounts/login/",
            data={
                "username": "olivia",
                "password": PASSWORD,
                "csrfmiddlewaretoken": csrf_of(login.text),
            },
        )
        assert response.status_code == 302
        settings_page = http.get("/settings/")
        response = http.post(
            "/settings/",
            data={"api_key": OWNER_KEY, "csrfmiddlewaretoken": csrf_of(settings_page.text)},
        )
        assert response.status_code == 303
        dashboard = http.get("/")
        response = http.post(
            "/", data={"request_id": job_id, "csrfmiddlewaretoken": csrf_of(dashboard.text)}
        )
        assert response.status_code == 303
        permalink = response.headers["location"]
        assert re.fullmatch(r"/r/[\w-]+/", permalink)
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline:
            badge = http.get(f"{permalink}status/", headers={"HX-Request": "true"}).text
            status = re.search(r'data-status="(\w+)"', badge).group(1)
            if status == "COMPLETED":
                break
            time.sleep(0.5)
        assert status == "COMPLETED"
        page = http.get(permalink).text
        assert 'id="source-1"' in page
        assert OWNER_KEY not in page
