"""Team accounts over real HTTP: the sign-in lockout."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta

import httpx
import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib.auth.models import User
from django.db.models import Max

from .conftest import PASSWORD
from .test_live import csrf_of

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

LOCK_SENTENCE = "Too many wrong passwords were tried for this account or from your network"


def wait_for(condition, *, timeout: float = 60.0, every: float = 0.25):
    """Poll until ``condition()`` returns something true; fail after a generous deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(every)


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
