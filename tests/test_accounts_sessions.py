"""The session engine and the member back end: plain-SQL reads that must behave exactly as
Django's own (sonarweb/accounts/sessions.py, sonarweb/accounts/backends.py)."""

from __future__ import annotations

import importlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session as DjangoSession
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sonarweb.accounts.backends import MEMBER_BACKEND, SESSION_ASKING, MemberBackend
from sonarweb.accounts.models import MemberSession as Session
from sonarweb.accounts.sessions import LEGACY_BACKEND, SessionStore
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_member_behind_a_session_is_the_one_the_orm_builds(owner):
    owner.last_login = timezone.now() - timedelta(hours=3)
    owner.save()
    found = MemberBackend().get_user(str(owner.pk))
    expected = User.objects.get(pk=owner.pk)
    assert found is not None and found.pk == owner.pk
    for field in User._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert timezone.is_aware(found.last_login) and timezone.is_aware(found.date_joined)
    assert found.check_password(PASSWORD)


def test_an_inactive_unknown_or_malformed_id_finds_nobody(owner):
    backend = MemberBackend()
    assert backend.get_user("999999") is None
    assert backend.get_user("not a number") is None
    owner.is_active = False
    owner.save()
    assert backend.get_user(str(owner.pk)) is None


def test_a_session_is_read_until_it_expires():
    store = SessionStore()
    store["colour"] = "teal"
    store.save()
    key = store.session_key
    assert SessionStore(key).load() == {"colour": "teal"}

    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    expired = SessionStore(key)
    assert expired.load() == {}
    assert expired.session_key is None
    unknown = SessionStore("x" * 32)
    assert unknown.load() == {} and unknown.session_key is None


def test_signing_in_records_the_member_backend(owner):
    client = Client()
    response = client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 302
    session = SessionStore(client.cookies["sessionid"].value).load()
    assert session[BACKEND_SESSION_KEY] == MEMBER_BACKEND
    assert client.get("/").status_code == 200


def test_a_session_from_before_the_member_backend_stays_signed_in(owner):
    store = SessionStore()
    store.update(
        {
            SESSION_KEY: str(owner.pk),
            BACKEND_SESSION_KEY: LEGACY_BACKEND,
            HASH_SESSION_KEY: owner.get_session_auth_hash(),
        }
    )
    store.save()
    client = Client()
    client.cookies["sessionid"] = store.session_key

    response = client.get("/")
    assert response.status_code == 200
    assert response.wsgi_request.user == owner
    assert SessionStore(store.session_key).load()[BACKEND_SESSION_KEY] == MEMBER_BACKEND


def test_a_changed_password_still_ends_other_sessions(owner):
    client = Client()
    client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert client.get("/").status_code == 200
    owner.set_password("another long passphrase 7")
    owner.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_session_names_its_member_and_reads_it_in_the_same_statement(owner, owner_client):
    row = Session.objects.get()
    assert row.member_id == owner.pk
    store = SessionStore(row.session_key)
    assert store.load()[SESSION_KEY] == str(owner.pk)
    read, found = store.member_read_with_it(owner.pk)
    expected = User.objects.get(pk=owner.pk)
    assert read and found is not None
    for field in User._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert timezone.is_aware(found.last_login) and timezone.is_aware(found.date_joined)
    # Another member's id is not taken from this read.
    assert store.member_read_with_it(owner.pk + 1) == (False, None)

    with CaptureQueriesContext(connection) as queries:
        response = owner_client.get("/healthz")
    assert response.status_code == 200 and response.wsgi_request.user == owner
    touching = [q["sql"] for q in queries if "auth_user" in q["sql"]]
    assert len(touching) == 1 and "accounts_session" in touching[0], touching
    assert SESSION_ASKING.get() is None


def test_an_anonymous_session_names_nobody():
    store = SessionStore()
    store["colour"] = "teal"
    store.save()
    assert Session.objects.get(session_key=store.session_key).member_id is None
    again = SessionStore(store.session_key)
    assert again.load() == {"colour": "teal"}
    assert again.member_read_with_it(None) == (False, None)


def test_a_member_deactivated_elsewhere_is_signed_out_on_the_next_request(owner, owner_client):
    assert owner_client.get("/").status_code == 200
    # Not through the team page (which also deletes sessions): the session row stays.
    User.objects.filter(pk=owner.pk).update(is_active=False)
    response = owner_client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_sessions_from_django_s_table_move_over_with_their_members(owner, member):
    migration = importlib.import_module("sonarweb.accounts.migrations.0003_member_sessions")
    old = [
        DjangoSession.objects.create(
            session_key=f"{n:032d}", session_data="", expire_date=timezone.now() + timedelta(days=1)
        )
        for n in range(4)
    ]
    for row, data in zip(
        old,
        [
            {
                SESSION_KEY: str(owner.pk),
                BACKEND_SESSION_KEY: LEGACY_BACKEND,
                HASH_SESSION_KEY: owner.get_session_auth_hash(),
            },
            {SESSION_KEY: str(member.pk), BACKEND_SESSION_KEY: MEMBER_BACKEND},
            {SESSION_KEY: "999999"},
            {"colour": "teal"},
        ],
        strict=True,
    ):
        row.session_data = DjangoStore().encode(data)
        row.save()
    DjangoSession.objects.filter(pk=old[3].pk).update(expire_date=timezone.now() - timedelta(1))
    # Signed with a secret key the site no longer has: nobody can read it.
    DjangoSession.objects.create(
        session_key="f" * 32,
        session_data=signing.dumps({"colour": "teal"}, key="another", salt="x"),
        expire_date=timezone.now() + timedelta(days=1),
    )

    migration.move_sessions(apps, SimpleNamespace(connection=connection))

    moved = dict(Session.objects.values_list("session_key", "member_id"))
    assert moved == {old[0].pk: owner.pk, old[1].pk: member.pk, old[2].pk: None}
    assert not DjangoSession.objects.exists()
    client = Client()
    client.cookies["sessionid"] = old[0].pk
    response = client.get("/")
    assert response.status_code == 200 and response.wsgi_request.user == owner
