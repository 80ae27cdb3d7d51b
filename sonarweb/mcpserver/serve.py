"""``python -m sonarweb.mcpserver.serve --host H --port P``: uvicorn serving ``sonarweb.asgi``.

gunicorn's master starts it (``sidecar.py``, from gunicorn.conf.py's hooks) on MCP_PORT beside
the WSGI workers; it reads the same environment as gunicorn.conf.py does (SONARWEB_PROXY_IPS,
GUNICORN_GRACEFUL_TIMEOUT, SONARWEB_LOG_LEVEL). It stops when that master is gone, however
the master ended (``--parent``).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

ASGI_APP = "sonarweb.asgi:application"


def _watch_parent(server: Any, parent: int) -> None:
    """Ask uvicorn to stop once the process that started this one is gone."""
    while not server.should_exit:
        time.sleep(1.0)
        if os.getppid() != parent:
            server.should_exit = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--parent", type=int, default=0, help="stop when this process is gone")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sonarweb.settings")
    import uvicorn

    config = uvicorn.Config(
        # Loaded before uvicorn logs anything: Django's LOGGING then carries its lines too.
        ASGI_APP,
        host=args.host,
        port=args.port,
        lifespan="on",
        # X-Forwarded-Proto and -For count only from the TLS proxy, as for gunicorn.
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("SONARWEB_PROXY_IPS", "127.0.0.1,::1"),
        # sonarweb.asgi logs each request without its query string.
        access_log=False,
        log_config=None,
        log_level=os.environ.get("SONARWEB_LOG_LEVEL", "info").lower(),
        timeout_graceful_shutdown=int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30")),
        timeout_keep_alive=5,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if args.parent:
        threading.Thread(
            target=_watch_parent, args=(server, args.parent), name="parent-watch", daemon=True
        ).start()
    server.run()
    if not server.started:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
