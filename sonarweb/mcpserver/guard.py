"""The door of /mcp: the Host and Origin checks, then the API's bearer token.

In order, before the MCP SDK sees anything:

1. The Host must be one of ``DJANGO_ALLOWED_HOSTS``, on any port (Django's own rule, so
   ``.example.com`` and ``*`` mean what they mean to the site): 421 otherwise. A browser
   ``Origin``, when one is sent, must name an allowed host too: 403 otherwise. Together they
   stop DNS rebinding; the SDK's transport security checks the same list again
   (``transport_security``).
2. A token in the query string is refused and not used (400), as the API does.
3. ``Authorization: Bearer sw_…`` must be a working token (``sonarweb/api/tokens.py``: not
   revoked or expired, its member active; its use is recorded): 401 otherwise, 503 while the
   server has no token secret. Scopes are checked per tool (``research.py``).

Refusals are ``application/problem+json``, like the API's.
"""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http.request import split_domain_port, validate_host
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from starlette.authentication import AuthCredentials
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sonarweb.api import problems, tokens
from sonarweb.api.auth import NOT_WORKING, refuse_unusable
from sonarweb.api.models import ApiToken
from sonarweb.api.models import Scope as TokenScope
from sonarweb.api.problems import Problem

from .caller import CALLER, Caller
from .research import db

log = logging.getLogger("sonarweb.mcp")


def allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS`` as Django applies it (DEBUG with none set allows localhost)."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def transport_security() -> TransportSecuritySettings:
    """The SDK's DNS-rebinding protection for the same hosts, on any port.

    The SDK matches names exactly (or ``name:*``), so a wildcard entry (``.example.com``,
    ``*``) cannot be said to it: then its check is off and the guard's, which is Django's
    and understands them, is the one that counts.
    """
    hosts = allowed_hosts()
    if any(h == "*" or h.startswith(".") for h in hosts):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[form for h in hosts for form in (h, f"{h}:*")],
        allowed_origins=[
            form
            for h in hosts
            for scheme in ("https", "http")
            for form in (f"{scheme}://{h}", f"{scheme}://{h}:*")
        ],
    )


def _origin_allowed(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
        host = parts.netloc
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts())


def _access_token(token: ApiToken) -> AccessToken:
    """The token as the SDK knows a principal (it binds sessions and request state to it);
    its secret is not repeated."""
    scopes = [TokenScope.READ, TokenScope.WRITE] if token.may_write else [TokenScope.READ]
    return AccessToken(
        token=token.shown,
        client_id=token.shown,
        scopes=[str(s) for s in scopes],
        subject=str(token.user_id),
        expires_at=int(token.expires_at.timestamp()) if token.expires_at else None,
    )


def _problem_response(status: int, body: dict[str, object], headers: dict[str, str]) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status,
        {"Cache-Control": "no-store", **headers},
        problems.CONTENT_TYPE,
    )


async def _caller(request: ASGIRequest) -> Caller:
    """The request's caller, once its origin and token pass; the Problem to refuse it with
    otherwise."""
    origin = request.headers.get("Origin")
    if origin and not _origin_allowed(origin):
        log.warning("MCP request refused: Origin is not in DJANGO_ALLOWED_HOSTS")
        raise Problem(403, "forbidden", "Requests from that origin are refused.")
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    credentials = credentials.strip()
    token = None
    refuse_unusable(request, kept_by="logs")
    if scheme.lower() == "bearer" and credentials:
        token = await db(tokens.authenticate, credentials)
    if token is None:
        raise problems.unauthorized(NOT_WORKING if credentials else "")
    return Caller(token=token, request=request)


class Guard:
    """ASGI middleware in front of the SDK's streamable HTTP endpoint."""

    def __init__(self, app: ASGIApp) -> None:
        # Sets the SDK's own record of the principal (scope["user"]) for the request.
        self.app = AuthContextMiddleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - /mcp is plain HTTP
            await self.app(scope, receive, send)
            return
        request = ASGIRequest(scope, io.BytesIO())
        try:
            request.get_host()
        except DisallowedHost:
            log.warning("MCP request refused: Host is not in DJANGO_ALLOWED_HOSTS")
            body = {
                "type": "about:blank",
                "title": "Misdirected Request",
                "status": 421,
                "detail": "This server does not answer to that host name.",
            }
            await _problem_response(421, body, {})(scope, receive, send)
            return
        try:
            caller = await _caller(request)
        except Problem as problem:
            body = problems.document(request, problem)
            await _problem_response(problem.status, body, problem.headers)(scope, receive, send)
            return
        scope["user"] = AuthenticatedUser(_access_token(caller.token))
        scope["auth"] = AuthCredentials(scope["user"].scopes)
        reset = CALLER.set(caller)
        try:
            await self.app(scope, receive, send)
        finally:
            CALLER.reset(reset)
