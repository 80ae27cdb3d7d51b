"""The ASGI application: the MCP server at /mcp beside Django (docs/mcp.md).

gunicorn (gunicorn.conf.py) serves the site itself over WSGI on PORT, and starts uvicorn with
this application on MCP_PORT (``sonarweb/mcpserver/serve.py``); the proxy examples send /mcp
there. Everything but /mcp goes to Django's own ASGI handler, so that port is the whole site
too (the permalinks the tools return work on it, and ``uvicorn sonarweb.asgi:application``
alone serves everything in development). The lifespan runs the MCP session manager.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from django.core.asgi import get_asgi_application
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sonarweb.settings")

# Django first: it configures logging and the apps the MCP server's code imports.
django_application = get_asgi_application()

from sonarweb.mcpserver.server import endpoint  # noqa: E402

access_log = logging.getLogger("sonarweb.mcp.access")


class AccessLog:
    """One line per request: method, path (never the query string), status and time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            access_log.info(
                '"%s %s" %s %.0f ms',
                scope["method"],
                scope["path"],
                status or "-",
                (time.monotonic() - began) * 1000,
            )


def build() -> ASGIApp:
    """A new application (each has its own MCP session manager, which runs once)."""
    mcp_endpoint, manager = endpoint()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    app = Starlette(
        routes=[
            Route("/mcp", endpoint=mcp_endpoint, name="mcp"),
            Mount("/", app=django_application),
        ],
        lifespan=lifespan,
    )
    return AccessLog(app)


application = build()
