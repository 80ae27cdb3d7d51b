"""/invite/<token>/: the only way onto the team, once per link, until it expires."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from sonarweb.accounts.models import Invitation, hash_token, new_invite_token

from .team_helpers import make_staff, signed_in

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "plum orchard lantern 73"


def invite(**fields) -> tuple[str, Invitation]:
    token = new_invite_token()
    fields.setdefault("expires_at", timezone.now() + timedelta(days=7))
    return token, Invitation.objects.create(token_hash=hash_token(token), **fields)


def accept(client: Client, token: str, username: str = "nia", password: str = NEW_PASSWORD):
    return client.post(
        f"/invite/{token}/",
        {"username": username, "password1": password, "password2": password},
    )


def test_the_invitation_page_is_public_and_private(anon_client):
    staff = make_staff()
    token, _ = invite(created_by=staff)
    response = anon_client.get(f"/invite/{token}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Join the team" in html and "invited by sam" in html
    for label in ("Username", "Password", "Password confirmation"):
        assert f">{label}</label>" in html
    assert response["Referrer-Policy"] == "same-origin"
    assert "noindex" in response["X-Robots-Tag"]
    assert "no-store" in response["Cache-Control"]


def test_accepting_creates_the_member_signs_them_in_and_sends_them_to_settings(anon_client):
    token, invitation = invite(email="nia@example.com")
    response = accept(anon_client, token)
    assert response.status_code == 303 and response["Location"] == "/settings/"
    user = User.objects.get(username="nia")
    assert user.email == "nia@example.com" and user.check_password(NEW_PASSWORD)
    assert not user.is_staff and user.is_active
    invitation.refresh_from_db()
    assert invitation.used_at is not None and invitation.used_by == user
    settings_page = anon_client.get("/settings/")
    assert settings_page.status_code == 200
    assert b"Welcome to the team, nia. Add your Perplexity API key" in settings_page.content


@pytest.mark.parametrize("state", ["used", "revoked", "expired", "unknown"])
def test_used_revoked_expired_or_unknown_invitations_are_404(anon_client, state):
    token, invitation = invite()
    now = timezone.now()
    if state == "used":
        assert accept(anon_client, token).status_code == 303
        anon_client = Client()
    elif state == "revoked":
        Invitation.objects.filter(pk=invitation.pk).update(revoked_at=now)
    elif state == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=now)
    else:
        token = new_invite_token()
    assert anon_client.get(f"/invite/{token}/").status_code == 404
    response = accept(anon_client, token, username="eve")
    assert response.status_code == 404
    assert b"Not found" in response.content
    assert not User.objects.filter(username="eve").exists()


def test_django_password_validators_apply(anon_client):
    token, invitation = invite(email="nia@example.com")
    for password, sentence in [
        ("short", b"too short"),
        ("password123", b"too common"),
        ("83749201938475", b"entirely numeric"),
        ("nia@example.com", b"too similar"),
    ]:
        response = accept(anon_client, token, password=password)
        assert response.status_code == 422, password
        assert sentence in response.content, password
    response = anon_client.post(
        f"/invite/{token}/",
        {"username": "nia", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"},
    )
    assert response.status_code == 422 and b"didn\xe2\x80\x99t match" in response.content
    invitation.refresh_from_db()
    assert invitation.used_at is None and not User.objects.filter(username="nia").exists()


def test_a_taken_username_is_refused_whatever_its_case(anon_client, owner):
    token, invitation = invite()
    response = accept(anon_client, token, username="Olivia")
    assert response.status_code == 422 and b"already exists" in response.content
    invitation.refresh_from_db()
    assert invitation.used_at is None


def test_a_signed_in_member_is_told_and_becomes_the_new_member(owner):
    token, _ = invite()
    browser = signed_in(owner)
    page = browser.get(f"/invite/{token}/")
    assert b"You are signed in as olivia" in page.content
    assert accept(browser, token).status_code == 303
    assert browser.get("/settings/").context["user"].username == "nia"


def test_there_is_no_self_registration(anon_client):
    for url in ["/accounts/signup/", "/accounts/register/", "/signup/", "/register/", "/invite/"]:
        response = anon_client.get(url)
        assert response.status_code in (302, 404), url
        if response.status_code == 302:
            assert response["Location"].startswith("/accounts/login/"), url


def test_the_new_member_can_sign_in_later(anon_client):
    token, _ = invite()
    accept(anon_client, token)
    fresh = Client()
    response = fresh.post("/accounts/login/", {"username": "nia", "password": NEW_PASSWORD})
    assert response.status_code == 302
