"""Django's authentication middleware, with the member read in the session's statement."""

from __future__ import annotations

from typing import Any

from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from sonarweb.accounts.backends import SESSION_ASKING


def member_of(request: HttpRequest) -> Any:
    """Django's ``get_user``, while the back end may take the member the session read.

    The session is named only for the length of the call, so nothing carries over to the
    next request on this thread.
    """
    if not hasattr(request, "_cached_user"):
        token = SESSION_ASKING.set(getattr(request, "session", None))  # type: ignore[arg-type]
        try:
            request._cached_user = auth.get_user(request)  # type: ignore[attr-defined]
        finally:
            SESSION_ASKING.reset(token)
    return request._cached_user  # type: ignore[attr-defined]


class MemberAuthenticationMiddleware(AuthenticationMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: member_of(request))
