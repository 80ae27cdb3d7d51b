from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from sonarweb.tracker import crypto


def test_round_trip_with_fresh_iv_per_value(settings):
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    one, two = crypto.encrypt("pplx-secret-1234"), crypto.encrypt("pplx-secret-1234")
    assert one != two
    assert "pplx" not in one
    assert crypto.decrypt(one) == crypto.decrypt(two) == "pplx-secret-1234"


def test_rotation_first_key_encrypts_all_decrypt(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("pplx-rotate-me")
    settings.ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "pplx-rotate-me"
    assert not crypto.is_current(token)
    rotated = crypto.rotate(token)
    assert crypto.is_current(rotated)
    settings.ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "pplx-rotate-me"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def test_bad_configuration_is_reported(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="Fernet"):
        crypto.encrypt("x")
