"""Who is calling: the token an MCP HTTP request was authenticated with (``guard.py`` sets
it for the length of the request; the SDK carries the request's context variables into the
tool that serves it)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from mcp.server.mcpserver.exceptions import ToolError

from sonarweb.api.models import ApiToken


@dataclass(frozen=True)
class Caller:
    token: ApiToken  # with its user loaded
    # The MCP HTTP request as Django sees it: absolute URLs (permalinks) are built from it,
    # with the host and scheme the member reached sonarweb by.
    request: HttpRequest

    @property
    def user(self) -> Any:
        return self.token.user


CALLER: ContextVar[Caller | None] = ContextVar("sonarweb_mcp_caller", default=None)


def current() -> Caller:
    """The caller of the tool or resource being served."""
    caller = CALLER.get()
    if caller is None:  # pragma: no cover - guard.py lets no request through without one
        raise ToolError("This call carries no sonarweb token.")
    return caller
