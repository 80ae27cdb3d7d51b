"""Helpers for the image-archive tests: raw-socket servers that misbehave, and test images.

``RawServer`` listens on loopback and hands each connection, after reading the request head,
to a handler that writes whatever bytes the test wants: a slow drip, an endless body, a
redirect to a private address. It records every request head and counts connections, so a
test can show that a refused fetch never connected at all.
"""

from __future__ import annotations

import io
import socket
import ssl
import struct
import threading
import zlib
from collections.abc import Callable
from types import TracebackType

from PIL import Image

Handler = Callable[["RawServer", socket.socket, bytes], None]


class RawServer:
    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str = "/image.png", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.requests.append(head)
            self.handler(self, conn, head)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self._listener.close()
        self._thread.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def answer(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> Handler:
    """A handler that answers once, with Content-Length, and closes."""

    def handle(server: RawServer, conn: socket.socket, head: bytes) -> None:
        lines = [f"HTTP/1.1 {status} Whatever"]
        fields = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
        lines += [f"{k}: {v}" for k, v in fields.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    return answer(status, headers={"Location": location})


def routes(table: dict[str, Handler]) -> Handler:
    """Dispatch on the request path; 404 for others."""

    def handle(server: RawServer, conn: socket.socket, head: bytes) -> None:
        path = head.split(b" ", 2)[1].decode()
        table.get(path, answer(404))(server, conn, head)

    return handle


def drip(seconds: int, *, in_headers: bool = False) -> Handler:
    """One byte a second for ``seconds``: in the body, or before the headers are complete."""

    def handle(server: RawServer, conn: socket.socket, head: bytes) -> None:
        if not in_headers:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n")
            conn.sendall(f"Content-Length: {seconds}\r\n\r\n".encode())
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(seconds):
            if server.stopped.wait(1):
                return
            conn.sendall(b"X-Slow: y\r\n" if in_headers else b"x")

    return handle


def endless(declare_length: bool) -> Handler:
    """A body far over any cap, with or without a Content-Length saying so."""

    def handle(server: RawServer, conn: socket.socket, head: bytes) -> None:
        length = f"Content-Length: {200 * 1024 * 1024}\r\n" if declare_length else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\n{length}Connection: close\r\n\r\n".encode())
        chunk = b"\0" * 65536
        for _ in range(3200):  # 200 MB at most, however the client behaves
            if server.stopped.is_set():
                return
            conn.sendall(chunk)

    return handle


def header_of(head: bytes, name: str) -> str | None:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


# -- images ---------------------------------------------------------------------------------


def png(width: int = 64, height: int = 48, color: str = "teal", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, "PNG")
    return out.getvalue()


def photo(width: int = 640, height: int = 480) -> bytes:
    """A JPEG with detail in it (a gradient and shapes), so encoders have work to do."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG of a few dozen bytes that declares a huge canvas."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


# -- an image host and a media storage for the archive tests -------------------------------


class ImageHost:
    """A WSGI app serving fixed bodies by path and counting requests per path."""

    def __init__(self, files: dict[str, tuple[int, bytes]]) -> None:
        self.files = files
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
        status, body = self.files.get(path, (404, b"not here"))
        start_response(f"{status} X", [("Content-Length", str(len(body)))])
        return [body]

    def total(self) -> int:
        with self._lock:
            return sum(self.hits.values())
