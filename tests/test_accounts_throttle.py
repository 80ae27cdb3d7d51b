"""Sign-in throttling with django-axes, on the app's and the admin's sign-in pages."""

from __future__ import annotations

import html
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from axes.models import AccessAttempt
from django.contrib.auth import base_user
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from sonarweb.accounts import signin
from sonarweb.accounts.models import SignInAllowance

from .conftest import PASSWORD
from .test_live import csrf_of

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
WRONG = "not the password at all"
LOCK_SENTENCE = "Too many wrong passwords were tried for this account or from your network"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    # Throttling does not depend on the hasher; PBKDF2's cost would only slow the test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def olivia(fast_hashing) -> User:
    return User.objects.create_user("olivia", "olivia@example.com", PASSWORD)


def sign_in(client: Client, username: str, password: str, address: str = "127.0.0.1", **extra):
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **extra,
    )


def test_ten_failures_lock_the_username_even_for_the_right_password(olivia):
    client = Client()
    for attempt in range(1, 10):
        response = sign_in(client, "olivia", WRONG)
        assert response.status_code == 200, attempt
        assert b"enter a correct username and password" in response.content
    response = sign_in(client, "olivia", WRONG)
    assert response.status_code == 429
    html = response.content.decode()
    assert LOCK_SENTENCE in html and "even the right password is refused" in html
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html  # the app's own page
    assert 13 * 60 <= int(response["Retry-After"]) <= 15 * 60 + 1
    until = (timezone.now() + timedelta(minutes=15)).strftime("%H:")
    assert f">{until}" in html  # "paused until HH:MM UTC"

    assert sign_in(client, "olivia", PASSWORD).status_code == 429
    # From anywhere: it is the account that is locked.
    assert sign_in(Client(), "olivia", PASSWORD, address="203.0.113.9").status_code == 429
    # Other members signing in from the same address are not affected.
    User.objects.create_user("mateo", "", PASSWORD)
    assert sign_in(Client(), "mateo", PASSWORD).status_code == 302


def test_the_admin_sign_in_counts_and_locks_too(olivia):
    olivia.is_staff = True
    olivia.save(update_fields=["is_staff"])
    client = Client()
    for _ in range(5):
        assert sign_in(client, "olivia", WRONG).status_code == 200
    for _ in range(4):
        response = client.post("/admin/login/", {"username": "olivia", "password": WRONG})
        assert response.status_code == 200
    response = client.post("/admin/login/", {"username": "olivia", "password": WRONG})
    assert response.status_code == 429
    assert LOCK_SENTENCE in response.content.decode()
    assert b'href="/admin/login/"' in response.content
    response = client.post("/admin/login/", {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 429
    assert sign_in(client, "olivia", PASSWORD).status_code == 429


def test_fifty_failures_from_one_address_lock_that_address(olivia):
    attacker = "198.51.100.7"
    client = Client()
    for n in range(49):
        response = sign_in(client, f"guess{n % 10}", WRONG, address=attacker)
        assert response.status_code == 200, n
    # Not yet: 49 from the address, at most 5 per username.
    assert sign_in(Client(), "olivia", PASSWORD, address=attacker).status_code == 302
    assert sign_in(client, "guess9", WRONG, address=attacker).status_code == 429
    assert sign_in(Client(), "olivia", PASSWORD, address=attacker).status_code == 429
    assert sign_in(Client(), "somebody", WRONG, address=attacker).status_code == 429
    # The same member from elsewhere signs in.
    assert sign_in(Client(), "olivia", PASSWORD, address="198.51.100.8").status_code == 302


def test_a_successful_sign_in_clears_the_count(olivia):
    client = Client()
    for _ in range(9):
        assert sign_in(client, "olivia", WRONG).status_code == 200
    assert sign_in(client, "olivia", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username="olivia").exists()
    client = Client()
    for _ in range(9):
        assert sign_in(client, "olivia", WRONG).status_code == 200
    assert sign_in(client, "olivia", PASSWORD).status_code == 302


def test_the_lock_ends_when_the_window_has_passed(olivia):
    client = Client()
    for _ in range(10):
        sign_in(client, "olivia", WRONG)
    assert sign_in(client, "olivia", PASSWORD).status_code == 429
    # Fifteen minutes later (moved back in the tables rather than waited for).
    earlier = timezone.now() - timedelta(minutes=15, seconds=1)
    AccessAttempt.objects.update(attempt_time=earlier)
    SignInAllowance.objects.update(last_at=earlier)
    assert sign_in(client, "olivia", PASSWORD).status_code == 302


def test_refused_attempts_during_a_lock_do_not_extend_it(olivia):
    client = Client()
    for _ in range(10):
        sign_in(client, "olivia", WRONG)
    locked_at = AccessAttempt.objects.get().attempt_time
    for _ in range(5):
        assert sign_in(client, "olivia", WRONG).status_code == 429
    attempt = AccessAttempt.objects.get()
    assert attempt.attempt_time == locked_at and attempt.failures_since_start == 10


def test_limits_and_window_come_from_settings(olivia, settings):
    settings.SONARWEB_LOGIN_FAILURES_PER_USER = 3
    client = Client()
    assert sign_in(client, "olivia", WRONG).status_code == 200
    assert sign_in(client, "olivia", WRONG).status_code == 200
    response = sign_in(client, "olivia", WRONG)
    assert response.status_code == 429
    settings.SONARWEB_LOGIN_LOCKOUT_MINUTES = 0.5
    assert 1 <= int(sign_in(client, "olivia", PASSWORD)["Retry-After"]) <= 30


def test_failures_are_logged_with_username_and_address_never_the_password(olivia, caplog):
    caplog.set_level(logging.INFO)
    client = Client()
    secret = "hunter2-very-secret-guess"
    for _ in range(10):
        sign_in(client, "olivia", secret, address="192.0.2.44")
    sign_in(client, "olivia", PASSWORD, address="192.0.2.44")
    failures = [r.getMessage() for r in caplog.records if "login failure" in r.getMessage()]
    assert failures and all('username: "olivia"' in m for m in failures)
    assert all('ip_address: "192.0.2.44"' in m for m in failures)
    refused = [r.getMessage() for r in caplog.records if r.name == "sonarweb.signin"]
    assert refused and "username='olivia' address=192.0.2.44" in refused[-1]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in everything and PASSWORD not in everything
    stored = AccessAttempt.objects.get()
    assert secret not in stored.post_data and "password=********" in stored.post_data


def test_x_forwarded_for_is_ignored_without_a_proxy(olivia):
    client = Client()
    for n in range(50):
        response = sign_in(
            client,
            f"guess{n % 10}",
            WRONG,
            address="198.51.100.7",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}


def test_behind_our_proxy_the_address_is_the_one_it_added(olivia, settings):
    settings.SONARWEB_PROXY_IPS = ["10.0.0.0/24", "::1"]
    proxy = "10.0.0.2"
    client = Client()
    # The client forges entries; our proxy appends the address it really saw.
    for n in range(10):
        sign_in(
            client, "guess", WRONG, address=proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 203.0.113.5"
        )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}
    response = sign_in(
        client, "olivia", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.6"
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not our proxy: the header is ignored
        ("10.0.0.2", "1.2.3.4, 203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "1.2.3.4, 203.0.113.5, 10.0.0.7", "203.0.113.5"),  # two proxies of ours
        ("10.0.0.2", "", "10.0.0.2"),  # no header: the proxy itself
        ("10.0.0.2", "garbage", "10.0.0.2"),
        ("10.0.0.2", "203.0.113.5, garbage", "10.0.0.2"),  # trust stops at what is not ours
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),
    ],
)
def test_client_address(settings, rf, peer, forwarded, expected):
    from sonarweb.accounts.throttle import client_address

    settings.SONARWEB_PROXY_IPS = ["10.0.0.0/24", "::1"]
    request = rf.post("/accounts/login/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_settings_read_the_limits_and_the_proxy_addresses(tmp_path):
    probe = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'sonarweb.settings';"
        "django.setup(); from django.conf import settings as s;"
        "print(s.SONARWEB_PROXY_IPS, s.SONARWEB_LOGIN_FAILURES_PER_USER,"
        " s.SONARWEB_LOGIN_FAILURES_PER_ADDRESS, s.SONARWEB_LOGIN_LOCKOUT_MINUTES)"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SONARWEB_"))}
    base.update(DJANGO_DEBUG="1", SONARWEB_DATA_DIR=str(tmp_path))

    def run(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run().stdout.strip() == "['127.0.0.1', '::1'] 10 50 15.0"
    assert (
        run(
            SONARWEB_PROXY_IPS="172.30.47.1",
            SONARWEB_LOGIN_FAILURES_PER_USER="3",
            SONARWEB_LOGIN_FAILURES_PER_ADDRESS="7",
            SONARWEB_LOGIN_LOCKOUT_MINUTES="0.1",
        ).stdout.strip()
        == "['172.30.47.1'] 3 7 0.1"
    )
    for name, value, sentence in [
        ("SONARWEB_LOGIN_FAILURES_PER_ADDRESS", "0", "must be 1 or more"),
        ("SONARWEB_LOGIN_LOCKOUT_MINUTES", "0", "must be more than 0"),
        ("SONARWEB_PROXY_IPS", "*", "never *"),
    ]:
        result = run(**{name: value})
        assert result.returncode != 0 and sentence in result.stderr, name


# --- sign-ins sent at once (sonarweb/accounts/signin.py) ---------------------------------------


class CountedChecks:
    """Django's password check, counted, and as slow as production's hasher (PBKDF2 takes
    about 0.3 s): sign-ins sent together are then all being checked at the same time."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._check = base_user.check_password
        monkeypatch.setattr(base_user, "check_password", self)

    def __call__(self, password: str, encoded: str, setter=None) -> bool:
        with self._lock:
            self.count += 1
        time.sleep(0.3)
        return self._check(password, encoded, setter)


def burst(url: str, usernames: list[str]) -> list[httpx.Response]:
    """One wrong password per username, each from its own session, all sent at once."""
    barrier = threading.Barrier(len(usernames))

    def attempt(username: str) -> httpx.Response:
        with httpx.Client(base_url=url, follow_redirects=False, timeout=60) as http:
            token = csrf_of(http.get("/accounts/login/").text)
            form = {"username": username, "password": WRONG, "csrfmiddlewaretoken": token}
            barrier.wait(timeout=60)
            return http.post("/accounts/login/", data=form)

    with ThreadPoolExecutor(max_workers=len(usernames)) as pool:
        return list(pool.map(attempt, usernames))


def failures_recorded(**where: str) -> int:
    return sum(AccessAttempt.objects.filter(**where).values_list("failures_since_start", flat=True))


def assert_locked_out_page(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert LOCK_SENTENCE in html.unescape(response.text)
    assert int(response.headers["Retry-After"]) > 60


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_wrong_passwords_sent_at_once_get_no_more_checks_than_the_limit(
    live_server, settings, monkeypatch
):
    limit = settings.SONARWEB_LOGIN_FAILURES_PER_USER
    User.objects.create_user("olivia", "olivia@example.com", PASSWORD)
    client = Client()
    for _ in range(limit - 1):
        assert sign_in(client, "olivia", WRONG).status_code == 200
    checks = CountedChecks(monkeypatch)

    answers = burst(live_server.url, ["olivia"] * 8)

    # One check was left: one of the eight had its password checked, and its failure
    # locked the account; the other seven were refused unchecked, with the same page.
    assert checks.count == 1
    for response in answers:
        assert_locked_out_page(response)
    # Axes recorded exactly the limit (one row per user agent: the test client's, httpx's).
    assert failures_recorded(username="olivia") == limit
    # Locked: the right password is refused too, unchecked.
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=60) as http:
        token = csrf_of(http.get("/accounts/login/").text)
        form = {"username": "olivia", "password": PASSWORD, "csrfmiddlewaretoken": token}
        assert_locked_out_page(http.post("/accounts/login/", data=form))
    assert checks.count == 1


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_an_address_gets_no_more_checks_than_its_limit_across_usernames(
    live_server, settings, monkeypatch
):
    settings.SONARWEB_LOGIN_FAILURES_PER_ADDRESS = 5
    names = [f"member{n}" for n in range(8)]
    for name in names:
        User.objects.create_user(name, "", PASSWORD)
    client = Client()
    for name in names[:4]:
        assert sign_in(client, name, WRONG).status_code == 200
    checks = CountedChecks(monkeypatch)

    answers = burst(live_server.url, names)

    assert checks.count == 1
    for response in answers:
        assert_locked_out_page(response)
    assert failures_recorded(ip_address="127.0.0.1") == 5


def test_a_scope_is_reserved_up_to_its_limit_then_afresh_after_the_window(settings):
    now = timezone.now()
    assert [signin.reserve("user:olivia", 3, now) for _ in range(4)] == [True] * 3 + [False]
    # Refusals leave the window where it was; it passes a window after it was last
    # extended, and the next reservation starts a new one.
    later = now + timedelta(minutes=settings.SONARWEB_LOGIN_LOCKOUT_MINUTES, seconds=1)
    assert signin.reserve("user:olivia", 3, later)
    row = SignInAllowance.objects.get(scope="user:olivia")
    assert (row.used, row.last_at) == (1, later)
    # A failure extends the window; a reservation alone does not.
    assert signin.reserve("user:olivia", 3, later + timedelta(minutes=1))
    assert SignInAllowance.objects.get(scope="user:olivia").last_at == later


def test_a_success_clears_the_username_and_gives_the_address_its_check_back(olivia):
    client = Client()
    for _ in range(3):
        assert sign_in(client, "olivia", WRONG, address="192.0.2.7").status_code == 200
    assert SignInAllowance.objects.get(scope="addr:192.0.2.7").used == 3
    assert sign_in(client, "olivia", PASSWORD, address="192.0.2.7").status_code == 302
    assert not SignInAllowance.objects.filter(scope="user:olivia").exists()
    # The address keeps its failures, and only them.
    assert SignInAllowance.objects.get(scope="addr:192.0.2.7").used == 3


def test_the_reserved_windows_end_when_axes_lock_ends(olivia):
    client = Client()
    for _ in range(10):
        sign_in(client, "olivia", WRONG, address="192.0.2.8")
    assert sign_in(client, "olivia", WRONG, address="192.0.2.8").status_code == 429
    last_failure = AccessAttempt.objects.get().attempt_time
    rows = SignInAllowance.objects.order_by("scope")
    assert [(r.scope, r.used, r.last_at) for r in rows] == [
        ("addr:192.0.2.8", 10, last_failure),
        ("user:olivia", 10, last_failure),
    ]


def test_rows_are_pruned_once_their_window_has_passed(settings):
    now = timezone.now()
    window = timedelta(minutes=settings.SONARWEB_LOGIN_LOCKOUT_MINUTES)
    signin.reserve("user:old", 10, now - window - timedelta(seconds=1))
    signin.reserve("user:recent", 10, now - window + timedelta(seconds=30))
    assert signin.prune(now) == 1
    assert list(SignInAllowance.objects.values_list("scope", flat=True)) == ["user:recent"]
