"""Run a WSGI app on a real socket in a background thread (stdlib only).

``serve(app)`` binds (port 0 picks a free port), starts a daemon thread and returns a
``RunningServer`` with ``.url``, ``.port`` and ``.stop()``; it is also a context manager::

    with serve(Simulator()) as server:
        httpx.get(server.url + "/v1/async/sonar", headers=...)
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # Tests and the demo would otherwise print one stderr line per poll.
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    # A slow answer (the "slow" fault) must not hold up other clients, and a stuck request
    # thread must not keep the process alive.
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with getfqdn(), which can take seconds
        # without working DNS; the simulator only needs the address it was given.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (read-timeout tests) close the socket mid-answer; that is
        # expected, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class RunningServer:
    """A WSGI server running in a daemon thread."""

    def __init__(self, server: _ThreadingServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5) -> None:
        """Stop serving and close the socket; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningServer {self.url}>"


def serve(app: Any, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve the WSGI callable ``app`` on ``host:port`` from a daemon thread."""
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    server = server_class((host, port), _QuietHandler)
    server.set_app(app)
    # A short poll interval keeps stop() quick, which adds up over a test suite.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"wsgi-server-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return RunningServer(server, thread)
