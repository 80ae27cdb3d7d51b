"""Encryption of stored API keys at rest.

Fernet gives authenticated encryption with a fresh IV per value. MultiFernet
takes the comma-separated ``SONARWEB_ENCRYPTION_KEYS``: the first key encrypts,
all of them decrypt, so keys can be rotated without downtime.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any configured key."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("SONARWEB_ENCRYPTION_KEYS holds no key.")
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "SONARWEB_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(32 url-safe base64-encoded bytes each)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored API key cannot be decrypted with the configured keys."
        ) from exc


def rotate(token: str) -> str:
    """The same plaintext, encrypted with the first (current) key."""
    return encrypt(decrypt(token))


def is_current(token: str) -> bool:
    """Whether the value was encrypted with the first configured key."""
    first = Fernet(settings.ENCRYPTION_KEYS[0].encode())
    try:
        first.decrypt(token.encode())
    except InvalidToken:
        return False
    return True
