"""Sessions and signing in are Django's own: database sessions (django_session), ModelBackend
after axes, Django's AuthenticationMiddleware. Sessions written before, in the member-naming
table, move over without signing anybody out (accounts migration 0004)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.contrib.sessions.serializers import JSONSerializer
from django.core import signing
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sonarweb.accounts import members
from sonarweb.tracker.following import chores
from tests.conftest import PASSWORD

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
# What the app's own session engine and back end wrote into sessions before 0004.
OLD_BACKEND = "sonarweb.accounts.backends.MemberBackend"
OLD_SALT = "django.contrib.sessions.SessionStore"  # the old store's class was SessionStore too
BEFORE = ("accounts", "0003_member_sessions")
AFTER = ("accounts", "0004_django_sessions")


def signed_in_as(client: Client) -> User | None:
    user = client.get("/healthz").wsgi_request.user
    return user if user.is_authenticated else None


def is_signed_out(client: Client) -> bool:
    response = client.get("/")
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_signing_in_and_out_uses_django_s_sessions_and_model_backend(owner):
    client = Client()
    response = client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 302
    key = client.cookies["sessionid"].value
    data = Session.objects.get(session_key=key).get_decoded()
    assert data[SESSION_KEY] == str(owner.pk) and data[BACKEND_SESSION_KEY] == MODEL_BACKEND
    assert client.get("/").status_code == 200

    assert client.post("/accounts/logout/").status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert is_signed_out(client)


@pytest.mark.django_db
def test_a_wrong_password_or_an_inactive_member_cannot_sign_in(owner):
    client = Client()
    response = client.post("/accounts/login/", {"username": "olivia", "password": "wrong"})
    assert response.status_code == 200 and signed_in_as(client) is None
    owner.is_active = False
    owner.save()
    response = client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 200 and signed_in_as(client) is None


@pytest.mark.django_db
def test_a_signed_in_request_reads_its_session_and_its_member_once_each(owner, owner_client):
    with CaptureQueriesContext(connection) as queries:
        assert signed_in_as(owner_client) == owner
    sql = [q["sql"] for q in queries]
    assert len([q for q in sql if "django_session" in q]) == 1, sql
    assert len([q for q in sql if "auth_user" in q]) == 1, sql


@pytest.mark.django_db
def test_a_changed_password_ends_other_sessions(owner):
    client = Client()
    client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert client.get("/").status_code == 200
    owner.set_password("another long passphrase 7")
    owner.save()
    assert is_signed_out(client)


@pytest.mark.django_db
def test_a_member_deactivated_elsewhere_is_refused_on_the_next_request(owner, owner_client):
    assert owner_client.get("/").status_code == 200
    # Not through the team page (which also deletes sessions): the session row stays, and
    # Django's ModelBackend refuses the inactive member all the same.
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert Session.objects.exists()
    assert is_signed_out(owner_client)


@pytest.mark.django_db
def test_deactivating_ends_the_member_s_sessions_and_no_one_else_s(owner, member, member_client):
    browsers = [Client(), Client()]
    for browser in browsers:
        browser.force_login(owner)
    anonymous = SessionStore()
    anonymous["colour"] = "teal"
    anonymous.save()
    expired = Client()
    expired.force_login(owner)
    Session.objects.filter(session_key=expired.cookies["sessionid"].value).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    kept = {member_client.cookies["sessionid"].value, anonymous.session_key}

    ended, _ = members.deactivate(owner)

    assert ended == 2
    live = Session.objects.filter(expire_date__gt=timezone.now())
    assert set(live.values_list("session_key", flat=True)) == kept
    assert all(is_signed_out(browser) for browser in browsers)
    assert signed_in_as(member_client) == member
    # Reactivated, they sign in again: the ended sessions stay ended.
    members.reactivate(owner)
    assert all(is_signed_out(browser) for browser in browsers)


@pytest.mark.django_db
def test_expired_sessions_are_pruned_by_the_refresher_s_housekeeping(owner, monkeypatch):
    live, expired = SessionStore(), SessionStore()
    for session in (live, expired):
        session["colour"] = "teal"
        session.save()
    now = timezone.now()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=now - timedelta(seconds=1)
    )
    chores.forget_schedule()
    chores.run_due(now)
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]


# -- the move from the member-naming session table --------------------------------------------


@pytest.fixture
def executor(transactional_db) -> Iterator[MigrationExecutor]:
    """Migrations run for real; the database is left fully migrated whatever happens."""
    executor = MigrationExecutor(connection)
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate(executor: MigrationExecutor, target: tuple[str, str]):
    executor.loader.build_graph()
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def old_session_data(data: dict) -> str:
    """Session data as the app's own session store signed it before 0004."""
    return signing.dumps(data, salt=OLD_SALT, serializer=JSONSerializer, compress=True)


def signed_in(user: User, backend: str) -> dict:
    return {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: backend,
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }


def test_nobody_is_signed_out_by_the_session_migration(executor, owner, member):
    old_apps = migrate(executor, BEFORE)
    OldSession = old_apps.get_model("accounts", "MemberSession")
    soon = timezone.now() + timedelta(days=1)
    rows = {
        # Signed in through the app's member back end, and (older still) through ModelBackend.
        "a" * 32: (signed_in(owner, OLD_BACKEND), owner.pk, soon),
        "b" * 32: (signed_in(member, MODEL_BACKEND), member.pk, soon),
        "c" * 32: ({"colour": "teal"}, None, soon),
        "d" * 32: (signed_in(owner, OLD_BACKEND), owner.pk, timezone.now() - timedelta(1)),
    }
    for key, (data, member_id, expires) in rows.items():
        OldSession.objects.create(
            session_key=key,
            session_data=old_session_data(data),
            expire_date=expires,
            member_id=member_id,
        )
    # Signed with a secret key the site no longer has: nobody can read it.
    OldSession.objects.create(
        session_key="e" * 32,
        session_data=signing.dumps({"colour": "teal"}, key="another", salt=OLD_SALT),
        expire_date=soon,
    )

    migrate(executor, AFTER)

    assert set(Session.objects.values_list("session_key", flat=True)) == {
        "a" * 32,
        "b" * 32,
        "c" * 32,
    }
    assert SessionStore("a" * 32).load()[BACKEND_SESSION_KEY] == MODEL_BACKEND
    assert SessionStore("c" * 32).load() == {"colour": "teal"}
    for key, user in (("a" * 32, owner), ("b" * 32, member)):
        client = Client()
        client.cookies["sessionid"] = key
        response = client.get("/")
        assert response.status_code == 200 and response.wsgi_request.user == user

    # Backwards and forwards again: still signed in, and the member column filled in again.
    old_apps = migrate(executor, BEFORE)
    OldSession = old_apps.get_model("accounts", "MemberSession")
    assert dict(OldSession.objects.values_list("session_key", "member_id")) == {
        "a" * 32: owner.pk,
        "b" * 32: member.pk,
        "c" * 32: None,
    }
    assert not old_apps.get_model("sessions", "Session").objects.exists()
    migrate(executor, AFTER)
    client = Client()
    client.cookies["sessionid"] = "b" * 32
    assert signed_in_as(client) == member
