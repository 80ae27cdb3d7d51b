"""API tokens: made, found, checked and revoked.

A token reads ``sw_`` + 8 characters of prefix + 40 of secret, all letters and digits (about
238 random bits after the prefix), so secret scanners and people recognise it and a double
click selects all of it. Only the prefix (no secret: it finds the row and names the token in
lists) and the HMAC-SHA256 of the whole token under ``SONARWEB_TOKEN_SECRET`` are stored. That
secret is the API's own: rotating ``DJANGO_SECRET_KEY`` revokes no token, and rotating this one
revokes them all.

A token works while it is not revoked, not expired, and its member is active: a deactivated
member's tokens stop on their next request, with nothing to clean up, and work again if the
member is reactivated.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import get_random_string

from sonarweb.accounts import audit
from sonarweb.accounts.models import AuditAction
from sonarweb.env import kept_secret

from .models import ApiToken

log = logging.getLogger("sonarweb.api.tokens")

TOKEN_PREFIX = "sw_"  # noqa: S105 - the public marker, not a secret
PREFIX_CHARS = 8
SECRET_CHARS = 40
TOKEN_PATTERN = re.compile(
    rf"{TOKEN_PREFIX}([A-Za-z0-9]{{{PREFIX_CHARS}}})[A-Za-z0-9]{{{SECRET_CHARS}}}"
)
# A token's last use is written at most this often, so that reading the API is not a write
# per request.
LAST_USE_STEP = timedelta(seconds=60)
# Tokens one member may hold at once (revoked and expired ones do not count).
MAX_ACTIVE_TOKENS = 25


def _configured_or_kept() -> str:
    """SONARWEB_TOKEN_SECRET, or the key kept in the data directory (made there the first
    time), or "" when neither can be had (a read-only data directory)."""
    secret = getattr(settings, "SONARWEB_TOKEN_SECRET", "")
    if secret:
        return secret
    path = getattr(settings, "API_TOKEN_SECRET_PATH", None)
    if path is None:
        return ""
    try:
        return kept_secret(Path(path), fernet=False)
    except OSError:
        log.warning("the API tokens' key cannot be kept in %s; API tokens are off", path)
        return ""


def enabled() -> bool:
    return bool(_configured_or_kept())


def digest(token: str) -> str:
    """The stored form of a token: its HMAC-SHA256 under the API's own secret."""
    secret = _configured_or_kept()
    if not secret:
        raise ImproperlyConfigured(
            "SONARWEB_TOKEN_SECRET is not set and the data directory cannot keep one, so API "
            "tokens are turned off."
        )
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def create_token(
    user: Any, *, name: str, scope: str, expires_at: datetime | None
) -> tuple[ApiToken, str]:
    """A new token for ``user`` and its plaintext, which is never stored and is shown once."""
    for _ in range(5):
        # Letters and digits, drawn with the secrets module.
        prefix = get_random_string(PREFIX_CHARS)
        plaintext = f"{TOKEN_PREFIX}{prefix}{get_random_string(SECRET_CHARS)}"
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user,
                    name=name,
                    scope=scope,
                    prefix=prefix,
                    token_hash=digest(plaintext),
                    expires_at=expires_at,
                )
        except IntegrityError:
            continue  # the prefix is taken (one chance in 10^14): draw again
        break
    else:  # pragma: no cover - five collisions in a row
        raise RuntimeError("could not draw a free token prefix")
    audit.record(user, AuditAction.TOKEN_CREATED, detail=describe(token))
    log.info("user_id=%s created api token %s scope=%s", user.pk, token.shown, scope)
    return token, plaintext


def describe(token: ApiToken) -> str:
    """The audit trail's words for a token: its name, prefix and scope, never its secret."""
    expiry = f"expires {token.expires_at:%Y-%m-%d}" if token.expires_at else "never expires"
    return f"Token “{token.name}” ({token.shown}), {token.scope}, {expiry}."


def authenticate(plaintext: str, now: datetime | None = None) -> ApiToken | None:
    """The working token this is, with its user; None for anything else. The comparison is
    constant-time, and a malformed value never reaches the database."""
    match = TOKEN_PATTERN.fullmatch(plaintext)
    if match is None or not enabled():
        return None
    now = now or timezone.now()
    token = (
        ApiToken.objects.active(now).select_related("user").filter(prefix=match.group(1)).first()
    )
    if token is None or not hmac.compare_digest(token.token_hash, digest(plaintext)):
        return None
    if not token.user.is_active:
        return None
    # Its last use is recorded at most once a minute, and its first use once.
    if token.last_used_at is None:
        first = ApiToken.objects.filter(pk=token.pk, last_used_at__isnull=True).update(
            last_used_at=now
        )
        if first:
            audit.record(token.user, AuditAction.TOKEN_FIRST_USED, detail=describe(token))
        token.last_used_at = now
    elif now - token.last_used_at >= LAST_USE_STEP:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USE_STEP)
        ).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(token: ApiToken, by: Any) -> bool:
    """Revoke the token (False when it already was): it stops on its next request."""
    now = timezone.now()
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by
    )
    if not revoked:
        return False
    token.revoked_at = now
    owner = "" if token.user_id == by.pk else f" Held by {token.user.get_username()}."
    audit.record(by, AuditAction.TOKEN_REVOKED, detail=describe(token) + owner)
    log.info("user_id=%s revoked api token %s of user_id=%s", by.pk, token.shown, token.user_id)
    return True
