"""The session engine and the member back end: plain-SQL reads that must behave exactly as
Django's own (sonarweb/accounts/sessions.py, sonarweb/accounts/backends.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from sonarweb.accounts.backends import MEMBER_BACKEND, MemberBackend
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
