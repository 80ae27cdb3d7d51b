"""Team accounts over real HTTP: the sign-in lockout, and an id moving to the key that can
see it, with the app and the simulator as real servers."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib.auth.models import User
from django.db.models import Max

from sonarweb.accounts.models import AuditEvent
from sonarweb.tracker.following.refresher import run_once
from sonarweb.tracker.models import AppState, TrackedRequest, UpstreamStatus

from .conftest import MEMBER_KEY, OWNER_KEY, PASSWORD, make_member, wait_for
from .test_live import csrf_of

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

LOCK_SENTENCE = "Too many wrong passwords were tried for this account or from your network"


def test_25_wrong_passwords_lock_the_account_until_the_window_passes(live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_user("olivia", "olivia@example.com", PASSWORD)
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as http:
        token = csrf_of(http.get("/accounts/login/").text)

        def sign_in(password: str) -> httpx.Response:
            form = {"username": "olivia", "password": password, "csrfmiddlewaretoken": token}
            return http.post("/accounts/login/", data=form)

        answers = [sign_in(f"wrong guess {n}") for n in range(25)]
        assert [r.status_code for r in answers] == [200] * 9 + [429] * 16
        last = answers[-1]
        page = html.unescape(last.text)
        assert LOCK_SENTENCE in page and "Until then even the right password is refused." in page
        assert re.search(r"sign-in is paused until <time[^>]*>\d\d:\d\d UTC</time>", page)
        assert int(last.headers["Retry-After"]) > 60
        assert sign_in(PASSWORD).status_code == 429

        # The window, settable for tests: a few seconds instead of fifteen minutes. The
        # lock holds until that long after the last counted failure, then lifts by itself.
        settings.SONARWEB_LOGIN_LOCKOUT_MINUTES = 0.05
        window = timedelta(minutes=0.05)
        locked_from = AccessAttempt.objects.aggregate(t=Max("attempt_time"))["t"]
        response = wait_for(lambda: (r := sign_in(PASSWORD)).status_code != 429 and r)
        assert response.status_code == 302 and response.headers["location"] == "/"
        signed_in_at = AccessLog.objects.get(username="olivia").attempt_time
        assert signed_in_at >= locked_from + window
        assert http.get("/").status_code == 200


def test_an_id_squatted_by_a_key_that_cannot_see_it_moves_to_the_owner(
    live_server, sim_server, simulator
):
    owner = make_member("olivia", OWNER_KEY)
    make_member("mateo", MEMBER_KEY)
    # Olivia's job: the simulator answers 404 to Mateo's key for it.
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)

    @contextmanager
    def browser(username: str) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as http:
            token = csrf_of(http.get("/accounts/login/").text)
            form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token}
            assert http.post("/accounts/login/", data=form).status_code == 302
            yield http

    def track(http: httpx.Client) -> str:
        token = csrf_of(http.get("/").text)
        response = http.post("/", data={"request_id": job_id, "csrfmiddlewaretoken": token})
        assert response.status_code == 303
        return response.headers["location"]

    with browser("mateo") as mateo, browser("olivia") as olivia:
        # A colleague pastes the id from chat first; their key cannot see the job.
        permalink = track(mateo)

        def stopped() -> bool:
            run_once()
            return TrackedRequest.objects.get(request_id=job_id).state == AppState.NOT_FOUND

        wait_for(stopped)
        assert "Not found upstream" in mateo.get(permalink).text

        # The job's owner pastes it: her key sees it, the row moves, the permalink stays.
        assert track(olivia) == permalink
        row = TrackedRequest.objects.get(request_id=job_id)
        assert row.added_by == owner and row.state == AppState.PENDING and row.is_polling
        assert row.note == "Moved to olivia, whose API key can see this job; polling resumed."
        page = html.unescape(olivia.get(permalink).text)
        assert "Your API key can see this job, so the request is now yours" in page
        # Told on the row for as long as it exists, not only until the next poll.
        assert re.search(r"<dt>Moved</dt><dd>From mateo, whose API key could not see it", page)

        def archived() -> bool:
            run_once()
            return TrackedRequest.objects.get(request_id=job_id).status == (
                UpstreamStatus.COMPLETED
            )

        wait_for(archived)
        page = mateo.get(permalink).text
        assert 'id="source-1"' in page and OWNER_KEY not in page
        event = AuditEvent.objects.get(action="claimed")
        assert event.actor == owner and event.request_id == job_id
        assert event.detail == "from mateo, whose API key could not see it"
