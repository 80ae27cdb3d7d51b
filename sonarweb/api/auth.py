"""Bearer tokens for the API, checked on every request; sessions are never accepted.

``TokenAuth("read")`` lets any working token in; ``TokenAuth("write")`` also needs the write
scope, and counts the call against the token's write limit. The API's views are exempt from
the login-required middleware and from CSRF (ninja marks them so): a browser's session cookie
signs in nobody here, so a page elsewhere cannot make a member's browser call the API.
"""

from __future__ import annotations

import re

from django.http import HttpRequest
from ninja.security import HttpBearer

from . import tokens
from .models import ApiToken, Scope
from .problems import Problem, unauthorized
from .throttling import take_write

# Something shaped like a token anywhere in the query string.
_TOKEN_IN_QUERY = re.compile(r"sw_[A-Za-z0-9]{20,}")
NOT_WORKING = "This token is unknown, revoked or expired, or its member is deactivated."


def refuse_unusable(request: HttpRequest, kept_by: str) -> None:
    """Before any token is looked at: a token sent in the URL (where ``kept_by`` keep it) is
    refused and not used, and so is every token while tokens are turned off."""
    if _TOKEN_IN_QUERY.search(request.META.get("QUERY_STRING", "")):
        raise Problem(
            400,
            "token-in-url",
            f"A token was sent in the URL, where {kept_by} keep it: it was not used. Revoke it "
            "in Settings, make a new one, and send that in the Authorization header.",
        )
    if not tokens.enabled():
        raise Problem(
            503,
            "tokens-off",
            "This server has no SONARWEB_TOKEN_SECRET set, so API tokens are turned off.",
        )


class TokenAuth(HttpBearer):
    """``Authorization: Bearer sw_…``, for one scope."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> ApiToken | None:
        # Not HttpBearer's own: that one logs an unexpected header whole in debug mode.
        refuse_unusable(request, kept_by="logs and browser histories")
        scheme, _, credentials = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not credentials.strip():
            return None
        return self.authenticate(request, credentials.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = tokens.authenticate(token)
        if found is None:
            raise unauthorized(NOT_WORKING)
        if self.scope == Scope.WRITE:
            if not found.may_write:
                raise Problem(
                    403,
                    "insufficient-scope",
                    "This token has the read scope: it can list, get and search, but not "
                    "start, track, cancel or share. Make a token with the write scope.",
                )
            take_write(found)
        # Code shared with the pages reads request.user: it is the token's member here,
        # whoever a session cookie sent along may name.
        request.user = found.user
        return found


READ = TokenAuth(Scope.READ)
WRITE = TokenAuth(Scope.WRITE)
