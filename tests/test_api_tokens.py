"""API tokens: made in Settings and shown once, stored as an HMAC under their own secret,
checked on every request (revoked, expired, deactivated member, scope), listed with their last
use, revocable by their member and by staff, and audited."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from sonarweb.accounts.models import AuditAction, AuditEvent
from sonarweb.api import tokens
from sonarweb.api.models import ApiToken, Scope

from .conftest import OWNER_KEY, make_member

pytestmark = pytest.mark.django_db

TOKEN_SECRET = "tests-only-api-token-secret-9b1f"
TOKEN_SHAPE = re.compile(r"sw_[A-Za-z0-9]{48}")


@pytest.fixture(autouse=True)
def _token_secret(settings) -> None:
    settings.SONARWEB_TOKEN_SECRET = TOKEN_SECRET


@pytest.fixture
def staff(db) -> User:
    user = make_member("sasha", None)
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def staff_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def make_token(user: User, scope: str = Scope.READ, **fields: object) -> str:
    _, plaintext = tokens.create_token(
        user, name=fields.pop("name", "script"), scope=scope, expires_at=None
    )
    if fields:
        ApiToken.objects.filter(prefix=plaintext[3:11]).update(**fields)
    return plaintext


def works(token: str, client: Client | None = None) -> bool:
    response = (client or Client()).get("/api/v1/requests", **bearer(token))
    assert response.status_code in (200, 401), response.content
    return response.status_code == 200


def created_token(response) -> str:
    found = re.search(
        r'id="new-token-value"[^>]*value="(sw_[A-Za-z0-9]+)"', response.content.decode()
    )
    assert found, "the new token is not on the page"
    return found.group(1)


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# -- making one --------------------------------------------------------------------------------


def test_settings_offers_tokens_and_a_new_one_is_shown_once(owner_client, owner):
    page = owner_client.get("/settings/").content.decode()
    assert "API tokens" in page and 'action="/settings/tokens/"' in page
    assert "You have no API tokens." in page

    response = owner_client.post(
        "/settings/tokens/", {"name": "nightly script", "scope": "write", "expires": "30"}
    )
    assert response.status_code == 201
    assert response["Cache-Control"].startswith("max-age=0")
    plaintext = created_token(response)
    assert TOKEN_SHAPE.fullmatch(plaintext)
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.scope) == (owner, "nightly script", "write")
    assert 29 <= (token.expires_at - timezone.now()).days <= 30
    # Only the prefix and the HMAC are kept; neither is the token.
    assert token.prefix == plaintext[3:11]
    expected = hmac.new(TOKEN_SECRET.encode(), plaintext.encode(), hashlib.sha256).hexdigest()
    assert token.token_hash == expected
    assert plaintext not in str(list(ApiToken.objects.values()))
    # Listed from now on by its prefix, never again whole.
    again = owner_client.get("/settings/").content.decode()
    assert f"sw_{token.prefix}…" in again and plaintext not in again
    assert "nightly script" in again
    assert plaintext not in owner_client.get("/settings/tokens/").content.decode()
    [event] = events(AuditAction.TOKEN_CREATED)
    assert event.actor == owner and "nightly script" in event.detail
    assert plaintext not in event.detail and token.prefix in event.detail


def test_a_token_never_expires_only_when_asked(owner_client):
    owner_client.post("/settings/tokens/", {"name": "forever", "scope": "read", "expires": "never"})
    assert ApiToken.objects.get().expires_at is None


def test_the_form_says_what_is_wrong(owner_client):
    response = owner_client.post("/settings/tokens/", {"name": "  ", "scope": "admin"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Name the token" in html and "Select a valid choice" in html
    assert ApiToken.objects.count() == 0


def test_making_a_token_needs_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/settings/tokens/", {"name": "x", "scope": "read", "expires": "7"})
    assert response.status_code == 403 and ApiToken.objects.count() == 0


def test_a_member_holds_a_bounded_number_of_tokens(owner_client, owner, monkeypatch):
    monkeypatch.setattr(tokens, "MAX_ACTIVE_TOKENS", 2)
    make_token(owner)
    make_token(owner)
    response = owner_client.post(
        "/settings/tokens/", {"name": "x", "scope": "read", "expires": "7"}
    )
    assert response.status_code == 422 and "revoke one" in response.content.decode()
    assert ApiToken.objects.count() == 2


def test_the_key_is_made_once_in_the_data_directory(owner, settings, tmp_path):
    from sonarweb.api import tokens

    settings.SONARWEB_TOKEN_SECRET = ""
    settings.API_TOKEN_SECRET_PATH = tmp_path / "token_secret"
    first = tokens.digest("sw_x")
    assert (tmp_path / "token_secret").stat().st_mode & 0o777 == 0o600
    assert tokens.digest("sw_x") == first


def test_without_a_key_to_be_had_tokens_are_off(owner_client, owner, settings, tmp_path):
    token = make_token(owner)
    settings.SONARWEB_TOKEN_SECRET = ""
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    settings.API_TOKEN_SECRET_PATH = not_a_directory / "token_secret"
    assert "SONARWEB_TOKEN_SECRET" in owner_client.get("/settings/").content.decode()
    response = owner_client.post(
        "/settings/tokens/", {"name": "x", "scope": "read", "expires": "7"}
    )
    assert response.status_code == 503 and ApiToken.objects.count() == 1
    answer = Client().get("/api/v1/requests", **bearer(token))
    assert answer.status_code == 503 and answer.json()["title"].startswith("API tokens")


# -- using one ---------------------------------------------------------------------------------


def test_a_token_works_and_its_first_use_is_audited_once(owner):
    token = make_token(owner)
    assert ApiToken.objects.get().last_used_at is None
    assert works(token) and works(token)
    assert ApiToken.objects.get().last_used_at is not None
    [event] = events(AuditAction.TOKEN_FIRST_USED)
    assert event.actor == owner and token not in event.detail


def test_the_last_use_moves_at_most_once_a_minute(owner):
    token = make_token(owner)
    works(token)
    first = ApiToken.objects.get().last_used_at
    works(token)
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=first - timedelta(minutes=5))
    works(token)
    assert ApiToken.objects.get().last_used_at > first


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic b2xpdmlhOnB3",
        "Token {token}",
        "Bearer {token}x",
        "Bearer sw_",
        "Bearer {token_upper}",
        "Bearer sw_AAAAAAAA" + "A" * 40,
    ],
)
def test_anything_but_the_exact_bearer_token_is_refused(owner, header):
    token = make_token(owner)
    value = header.format(token=token, token_upper=token.upper())
    extra = {"HTTP_AUTHORIZATION": value} if value else {}
    response = Client().get("/api/v1/requests", **extra)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["status"] == 401 and problem["type"].endswith("#problem-unauthorized")


def test_the_hash_is_keyed_by_its_own_secret_not_the_secret_key(owner, settings):
    token = make_token(owner)
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    assert works(token)
    settings.SONARWEB_TOKEN_SECRET = "another-token-secret"
    assert not works(token)


def test_a_session_alone_signs_nobody_in(owner_client, owner):
    """The API never takes a session: a page elsewhere cannot make a member's browser use it."""
    response = owner_client.get("/api/v1/requests")
    assert response.status_code == 401
    started = owner_client.post(
        "/api/v1/research", {"question": "x"}, content_type="application/json"
    )
    assert started.status_code == 401


def test_a_token_in_the_url_is_refused_and_not_used(owner):
    token = make_token(owner)
    for query in (f"?token={token}", f"?access_token={token}", f"?q={token}"):
        response = Client().get(f"/api/v1/requests{query}", **bearer(token))
        assert response.status_code == 400
        assert response.json()["type"].endswith("#problem-token-in-url")
    assert ApiToken.objects.get().last_used_at is None


def test_an_expired_token_stops(owner):
    token = make_token(owner, expires_at=timezone.now() + timedelta(minutes=1))
    assert works(token)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not works(token)


def test_a_deactivated_members_tokens_stop_at_once(owner, staff_client):
    from sonarweb.accounts import members

    token = make_token(owner)
    assert works(token)
    members.deactivate(owner)
    assert not works(token)
    members.reactivate(owner)
    assert works(token)


def test_a_deactivated_member_through_the_team_page(owner, staff_client):
    token = make_token(owner)
    assert works(token)
    staff_client.post(f"/team/members/{owner.pk}/deactivate/")
    assert not works(token)


def test_a_read_token_may_not_write(owner):
    token = make_token(owner, Scope.READ)
    for method, path in (
        ("post", "/api/v1/research"),
        ("post", "/api/v1/requests"),
        ("post", "/api/v1/requests/abc/cancel"),
        ("post", "/api/v1/requests/abc/share"),
        ("delete", "/api/v1/requests/abc/share"),
    ):
        response = getattr(Client(), method)(
            path, "{}", content_type="application/json", **bearer(token)
        )
        assert response.status_code == 403, path
        assert response.json()["type"].endswith("#problem-insufficient-scope")


def test_bearer_calls_need_no_csrf_token(owner):
    token = make_token(owner, Scope.WRITE)
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/requests/nope/share", "{}", content_type="application/json", **bearer(token)
    )
    assert response.status_code == 404  # through auth and CSRF: the request is unknown


# -- listing and revoking ----------------------------------------------------------------------


def item(html: str, token: ApiToken) -> str:
    found = re.search(rf'<li class="token-item" id="api-token-{token.pk}">(.*?)</li>', html, re.S)
    assert found, f"token {token.pk} is not listed"
    return found.group(1)


def fact(block: str, name: str) -> str:
    found = re.search(rf"<dt>{name}</dt><dd>(.*?)</dd>", block, re.S)
    assert found, name
    return re.sub(r"<[^>]+>", " ", found.group(1))


def test_the_list_shows_scope_expiry_and_last_use(owner_client, owner):
    in_three_days = timezone.now() + timedelta(days=3)
    make_token(owner, Scope.WRITE, name="agent", expires_at=in_three_days)
    token = make_token(owner, name="reader")
    works(token)
    html = owner_client.get("/settings/tokens/").content.decode()
    agent = item(html, ApiToken.objects.get(name="agent"))
    assert fact(agent, "Scope") == "write"
    assert fact(agent, "Expires").strip() == in_three_days.strftime("%Y-%m-%d")
    assert fact(agent, "Last used") == "Never"
    reader = item(html, ApiToken.objects.get(name="reader"))
    assert fact(reader, "Scope") == "read" and fact(reader, "Expires") == "Never"
    last_used = fact(reader, "Last used").split()
    assert last_used[:2] == ["just", "now"] or "ago" in last_used
    assert "Active" in reader and "Revoke" in reader


def test_a_member_revokes_their_token_after_confirming(owner_client, owner):
    token = make_token(owner)
    stored = ApiToken.objects.get()
    confirm = owner_client.get(f"/settings/tokens/{stored.pk}/revoke/")
    assert confirm.status_code == 200 and "Revoke this API token?" in confirm.content.decode()
    assert works(token)
    response = owner_client.post(f"/settings/tokens/{stored.pk}/revoke/", {"from": "settings"})
    assert response.status_code == 303 and response["Location"] == "/settings/"
    assert not works(token)
    stored.refresh_from_db()
    assert stored.revoked_at is not None and stored.revoked_by == owner
    # Twice is harmless, and recorded once.
    owner_client.post(f"/settings/tokens/{stored.pk}/revoke/")
    [event] = events(AuditAction.TOKEN_REVOKED)
    assert event.actor == owner and token not in event.detail
    assert "Revoked" in owner_client.get("/settings/").content.decode()


def test_another_member_cannot_see_or_revoke_a_token(member_client, owner):
    token = make_token(owner, name="olivias own token")
    pk = ApiToken.objects.get().pk
    assert member_client.get(f"/settings/tokens/{pk}/revoke/").status_code == 404
    assert member_client.post(f"/settings/tokens/{pk}/revoke/").status_code == 404
    assert works(token)
    assert "olivias own token" not in member_client.get("/settings/tokens/").content.decode()
    assert member_client.get("/team/tokens/").status_code == 403


def test_staff_see_and_revoke_every_token(staff_client, staff, owner, member):
    owners = make_token(owner, Scope.WRITE, name="olivias agent")
    make_token(member, name="mateos script")
    page = staff_client.get("/team/tokens/").content.decode()
    assert "olivias agent" in page and "mateos script" in page
    assert owners not in page
    pk = ApiToken.objects.get(name="olivias agent").pk
    response = staff_client.post(f"/settings/tokens/{pk}/revoke/", {"from": "team"})
    assert response.status_code == 303 and response["Location"] == "/team/tokens/"
    assert not works(owners)
    [event] = events(AuditAction.TOKEN_REVOKED)
    assert event.actor == staff and "olivia" in event.detail
    assert "revoked an API token" in staff_client.get("/team/tokens/").content.decode()


def test_the_token_pages_ask_anonymous_visitors_to_sign_in(anon_client):
    for path in ("/settings/tokens/", "/team/tokens/", "/settings/tokens/1/revoke/"):
        response = anon_client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_perplexity_key_never_shows(owner):
    token = make_token(owner)
    response = Client().get("/api/v1/requests", **bearer(token))
    assert OWNER_KEY not in response.content.decode()
    assert OWNER_KEY[-4:] not in response.content.decode()
