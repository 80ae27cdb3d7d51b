"""The MCP server beside gunicorn: started, kept running and stopped by gunicorn's master.

gunicorn serves the site with threaded WSGI workers; the MCP server is ASGI (the SDK is
async), so it runs in its own process: uvicorn with ``sonarweb.asgi`` on MCP_PORT
(``serve.py``). gunicorn.conf.py's hooks call ``start`` when the master is ready, ``restart``
when it reloads (SIGHUP, so new code is served) and ``stop`` when it exits. A thread in the
master starts the process again if it ends unasked, waiting longer after each quick failure
(a port in use, say) so that it never spins.

The process is made with ``os.posix_spawn``, not ``subprocess``: the master forks workers at
any moment, and a worker forked while ``subprocess`` waits on its exec pipe would hold that
pipe open, and the thread with it, for the worker's whole life. Standard library only: the
master imports it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

log = logging.getLogger("sonarweb.mcp")

DEFAULT_PORT = 8001
# A process that ran this long before it ended was not failing to start: retry at once.
STABLE_SECONDS = 60.0
MAX_DELAY_SECONDS = 60.0


def host_of(bind: str) -> str:
    """The address gunicorn listens on, for the MCP server to listen on the same one: all
    interfaces in a container, loopback behind a proxy on bare metal."""
    if bind.startswith(("unix:", "fd://")):
        return "127.0.0.1"
    if bind.startswith("["):
        return bind[1:].split("]", 1)[0]
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    return host or "0.0.0.0"  # noqa: S104 - gunicorn's own default for ":PORT"


class Sidecar:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.pid: int | None = None  # while the process runs
        self._stopping = threading.Event()
        self._restarting = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name="mcp-server", daemon=True)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "sonarweb.mcpserver.serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--parent",
            str(os.getpid()),
        ]

    def start(self) -> None:
        log.info("Starting the MCP server on %s:%s", self.host, self.port)
        self._thread.start()

    def _spawn(self) -> int | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            # Its own session: a Ctrl-C in the terminal reaches gunicorn, whose on_exit stops it.
            self.pid = os.posix_spawn(sys.executable, self.command(), os.environ, setsid=True)
            return self.pid

    def _supervise(self) -> None:
        delay = 1.0
        while True:
            began = time.monotonic()
            pid = self._spawn()
            if pid is None:
                return
            try:
                code: int | None = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            except ChildProcessError:
                code = None  # gunicorn's master reaped it first (it reaps every child that ends)
            with self._lock:
                self.pid = None
            if self._stopping.is_set():
                return
            if self._restarting.is_set():
                self._restarting.clear()
                continue
            if time.monotonic() - began > STABLE_SECONDS:
                delay = 1.0
            log.error(
                "The MCP server on port %s ended (exit code %s); starting it again in %.0f s.",
                self.port,
                "unknown" if code is None else code,
                delay,
            )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_DELAY_SECONDS)

    def _signal(self, signum: int) -> bool:
        with self._lock:
            if self.pid is None:
                return False
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                return False
            return True

    def restart(self) -> None:
        """End the process; the supervising thread starts a new one with the new code."""
        self._restarting.set()
        if self._signal(signal.SIGTERM):
            log.info("Restarting the MCP server")
        else:
            self._restarting.clear()

    def stop(self, timeout: float) -> None:
        """Stop the process: SIGTERM, ``timeout`` seconds for calls in flight, then SIGKILL."""
        self._stopping.set()
        self._signal(signal.SIGTERM)
        self._thread.join(timeout=timeout)
        if self._thread.is_alive() and self._signal(signal.SIGKILL):
            self._thread.join(timeout=5)


# One per gunicorn master. Kept here, not in gunicorn.conf.py, whose module gunicorn runs again
# on every reload.
_running: Sidecar | None = None


def start(server: Any) -> None:
    """gunicorn's when_ready hook."""
    global _running
    # MCP_PORT (default 8001); 0 turns the MCP server off.
    port = int(os.environ.get("MCP_PORT", str(DEFAULT_PORT)))
    if port == 0 or _running is not None:
        return
    binds = list(server.cfg.bind or ["127.0.0.1:8000"])
    _running = Sidecar(host_of(binds[0]), port)
    _running.start()


def restart(server: Any) -> None:
    """gunicorn's on_reload hook."""
    if _running is not None:
        _running.restart()


def stop(server: Any) -> None:
    """gunicorn's on_exit hook."""
    if _running is not None:
        _running.stop(timeout=float(server.cfg.graceful_timeout) + 5)
