"""Password change from Settings, and password reset only when mail is configured."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from .conftest import PASSWORD

RESET_URLS = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
]
NEW_PASSWORD = "a brand new passphrase 8317"


@pytest.fixture
def mail_off(settings):
    settings.SONARWEB_MAIL_ENABLED = False


@pytest.fixture
def mail_on(settings):
    settings.SONARWEB_MAIL_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "research@example.com"


def signs_in(username: str, password: str) -> bool:
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": username, "password": password}, follow=True
    )
    return response.wsgi_request.user.is_authenticated


@pytest.mark.parametrize("url", RESET_URLS)
def test_without_mail_reset_pages_do_not_exist(mail_off, anon_client, url, db):
    assert anon_client.get(url).status_code == 404
    assert anon_client.post(url, {"email": "olivia@example.com"}).status_code == 404
    assert not mail.outbox


def test_without_mail_no_page_links_to_reset(mail_off, anon_client, owner_client):
    for body in (
        anon_client.get("/accounts/login/").content.decode(),
        owner_client.get("/settings/").content.decode(),
    ):
        assert "password_reset" not in body and "/reset/" not in body
    assert "An administrator can set a new one" in anon_client.get("/accounts/login/").text


def test_with_mail_reset_works_end_to_end(mail_on, anon_client, owner):
    login_page = anon_client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in login_page

    response = anon_client.post("/accounts/password_reset/", {"email": "olivia@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    assert anon_client.get(response["Location"]).status_code == 200
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["olivia@example.com"]
    assert message.from_email == "research@example.com"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body)
    assert link, message.body

    form = anon_client.get(link.group(1), follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.text
    done = anon_client.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert done.redirect_chain[-1][0] == "/accounts/reset/done/"
    assert signs_in("olivia", NEW_PASSWORD)
    assert not signs_in("olivia", PASSWORD)
    # The link worked once.
    again = anon_client.get(link.group(1), follow=True)
    assert "This link no longer works" in again.text


def test_with_mail_an_unknown_address_sends_nothing_and_says_the_same(mail_on, anon_client, db):
    response = anon_client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert response["Location"] == "/accounts/password_reset/done/"
    assert not mail.outbox


def test_member_changes_their_password_from_settings(owner_client, owner):
    settings_page = owner_client.get("/settings/").content.decode()
    assert 'href="/accounts/password_change/"' in settings_page
    form = owner_client.get("/accounts/password_change/")
    assert form.status_code == 200
    assert '<label for="id_old_password">' in form.text

    wrong = owner_client.post(
        "/accounts/password_change/",
        {"old_password": "not it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 200 and 'role="alert"' in wrong.text
    changed = owner_client.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert changed.redirect_chain[-1][0] == "/accounts/password_change/done/"
    assert "Password changed" in changed.text
    # Still signed in here, and the new password works elsewhere.
    assert owner_client.get("/settings/").status_code == 200
    assert signs_in("olivia", NEW_PASSWORD)
    assert User.objects.get(pk=owner.pk).check_password(NEW_PASSWORD)


def test_password_change_needs_a_signed_in_member(anon_client, db):
    response = anon_client.get("/accounts/password_change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
