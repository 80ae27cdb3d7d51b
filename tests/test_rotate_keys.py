"""manage.py rotate_encryption_keys: re-encrypt stored API keys with the first key."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from sonarweb.tracker import crypto
from sonarweb.tracker.models import ApiKey

pytestmark = pytest.mark.django_db


def new_key() -> str:
    return Fernet.generate_key().decode()


def save_key(username: str, secret: str) -> ApiKey:
    user = User.objects.create_user(username)
    key = ApiKey(user=user)
    key.set_secret(secret)
    key.save()
    return key


def rotate() -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    return out.getvalue()


def test_rotates_old_keys_and_second_run_does_nothing(settings):
    old, new = new_key(), new_key()
    settings.ENCRYPTION_KEYS = [old]
    secrets = {f"user{i}": f"pplx-secret-{i:04d}" for i in range(3)}
    for username, secret in secrets.items():
        save_key(username, secret)
    settings.ENCRYPTION_KEYS = [new, old]
    save_key("fresh", "pplx-already-current")

    output = rotate()
    assert "Re-encrypted 3 API keys with the current key; 1 already current." in output
    assert not any(secret in output for secret in secrets.values())

    stored = dict(ApiKey.objects.values_list("user__username", "encrypted"))
    settings.ENCRYPTION_KEYS = [new]
    for key in ApiKey.objects.select_related("user"):
        assert crypto.is_current(key.encrypted)
        expected = secrets.get(key.user.username, "pplx-already-current")
        assert key.reveal() == expected

    settings.ENCRYPTION_KEYS = [new, old]
    assert "Re-encrypted 0 API keys with the current key; 4 already current." in rotate()
    assert dict(ApiKey.objects.values_list("user__username", "encrypted")) == stored


def test_undecryptable_keys_are_reported_by_user_id_and_fail(settings):
    lost, old, new = new_key(), new_key(), new_key()
    settings.ENCRYPTION_KEYS = [old]
    good = save_key("good", "pplx-good-secret-1111")
    settings.ENCRYPTION_KEYS = [lost]
    bad = save_key("bad", "pplx-lost-secret-9999")
    before = bad.encrypted
    settings.ENCRYPTION_KEYS = [new, old]

    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("rotate_encryption_keys", stdout=out)
    message = str(failure.value)
    assert "1 API key could not be decrypted" in message
    assert f"user ids: {bad.user_id}" in message
    assert "pplx-lost-secret-9999" not in message + out.getvalue()
    assert "Re-encrypted 1 API key with the current key; 0 already current." in out.getvalue()

    good.refresh_from_db()
    bad.refresh_from_db()
    assert crypto.is_current(good.encrypted)
    assert bad.encrypted == before


def test_no_keys_stored(settings):
    settings.ENCRYPTION_KEYS = [new_key()]
    assert "Re-encrypted 0 API keys with the current key; 0 already current." in rotate()
