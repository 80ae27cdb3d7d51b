"""gunicorn settings for sonarweb, from the environment (see docs/configuration.md).

Command-line options still win, e.g. `gunicorn --config gunicorn.conf.py --bind 127.0.0.1:8000`.
"""

from __future__ import annotations

import os
from typing import Any

wsgi_app = "sonarweb.wsgi:application"

# In a container the port is published by Docker, so listen on every interface; on bare
# metal the systemd unit passes --bind 127.0.0.1:${PORT} to stay behind the proxy. Either
# way PORT is the port, and `python -m sonarweb.healthcheck web` reads this same setting.
bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]

# Threads suit this app: a request mostly waits on the database or, for the few
# interactive calls, on Perplexity; a thread waiting costs far less than a process.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# On SIGTERM, requests in flight get this long to finish before workers are killed.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5

accesslog = "-"
errorlog = "-"
# Share, invitation and password-reset URLs carry their secret: both logs show it as
# [redacted] (sonarweb/accesslog.py).
logger_class = "sonarweb.accesslog.RedactingLogger"
loglevel = os.environ.get("SONARWEB_LOG_LEVEL", "info").lower()

# X-Forwarded-Proto (and friends) count only from the TLS proxy's addresses; gunicorn then
# sets the request's scheme, which Django reads. Never "*": anyone who can reach the port
# directly could otherwise claim HTTPS.
forwarded_allow_ips = os.environ.get("SONARWEB_PROXY_IPS", "127.0.0.1,::1")

# gunicorn 25+ opens a control socket under $HOME by default; the image's user cannot
# write there ("Control server error: Permission denied"), and nothing here uses it.
control_socket_disable = True

# Workers heartbeat through a temporary file; in memory it cannot stall on a slow disk.
_shm = "/dev/shm"  # noqa: S108 - tmpfs made for this, private to the container
worker_tmp_dir = _shm if os.path.isdir(_shm) else None


def on_starting(server: Any) -> None:
    """Load the settings in the master before any worker forks.

    A bad setting then stops gunicorn once with its one-sentence reason, instead of every
    worker failing to boot in turn.
    """
    from sonarweb.startup import require_valid_settings

    require_valid_settings()


# The MCP server (docs/mcp.md) is ASGI: the master runs it beside the workers, as uvicorn with
# sonarweb.asgi on MCP_PORT (default 8001; 0 turns it off), on the address gunicorn binds.
# It is restarted with the workers on SIGHUP and stopped when gunicorn stops.
def when_ready(server: Any) -> None:
    from sonarweb.mcpserver import sidecar

    sidecar.start(server)


def on_reload(server: Any) -> None:
    from sonarweb.mcpserver import sidecar

    sidecar.restart(server)


def on_exit(server: Any) -> None:
    from sonarweb.mcpserver import sidecar

    sidecar.stop(server)
