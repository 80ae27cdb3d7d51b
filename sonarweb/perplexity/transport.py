"""HTTP plumbing with a total deadline and a byte cap, for calls to hosts we do not control.

httpx's timeouts are per operation: a server that sends one byte every second never trips a
read timeout, so a call could last for hours. Here every socket operation of a call (connect,
TLS handshake, each write and each read) gets a timeout clamped to the time left before the
call's deadline, so the whole call ends by the deadline however the bytes trickle in.

The body is read raw and decoded here, not by httpx, so that a decompression bomb is caught
after at most ``limit + 1`` decoded bytes: zlib is asked for no more than that per step.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import threading
import time
import typing
import zlib
from collections.abc import Iterator

import httpcore
import httpx

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sonarweb_call_deadline", default=None
)
_cancel: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "sonarweb_call_cancel", default=None
)
# A blocking socket operation wakes at least this often to see whether the call was cancelled.
CANCEL_CHECK_SECONDS = 0.5

# What we accept on the wire: both decode with zlib, step by step.
ACCEPT_ENCODING = "gzip, deflate"


class DeadlineExceeded(httpcore.ReadTimeout):
    """The call's total deadline passed (mapped by httpx to a ReadTimeout)."""


class CallCancelled(httpcore.ReadError):
    """Whoever made the call gave up on it (a refresher shutting down)."""


class BodyTooLarge(Exception):
    """The body, decoded, is larger than the limit. ``declared`` is Content-Length if known."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit
        self.declared = declared


class BadEncoding(Exception):
    """The body's Content-Encoding is one we did not ask for, or its data is corrupt."""


@contextlib.contextmanager
def deadline(seconds: float, cancel: threading.Event | None = None) -> Iterator[float]:
    """Every socket operation inside this block ends by ``seconds`` from now, or soon after
    ``cancel`` is set."""
    at = time.monotonic() + seconds
    token = _deadline.set(at)
    cancel_token = _cancel.set(cancel)
    try:
        yield at
    finally:
        _cancel.reset(cancel_token)
        _deadline.reset(token)


def time_left(timeout: float | None) -> float | None:
    """The socket timeout to use now: the operation's own, clamped to the deadline."""
    cancel = _cancel.get()
    if cancel is not None and cancel.is_set():
        raise CallCancelled("the call was cancelled")
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the call's total deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if _cancel.get() is None:
            return self._stream.read(max_bytes, time_left(timeout))
        # Wait in short slices, so that a cancelled call lets go of a silent socket quickly.
        # A read that timed out consumed nothing, so it can be tried again.
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            left = time_left(None if until is None else max(until - time.monotonic(), 0.0))
            step = CANCEL_CHECK_SECONDS if left is None else min(left, CANCEL_CHECK_SECONDS)
            try:
                return self._stream.read(max_bytes, step)
            except httpcore.ReadTimeout:
                if left is not None and left <= CANCEL_CHECK_SECONDS:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, time_left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, time_left(timeout))
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, with every operation bounded by the call's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, time_left(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, time_left(timeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def deadline_transport(
    network_backend: httpcore.NetworkBackend | None = None, **kwargs: typing.Any
) -> httpx.HTTPTransport:
    """An httpx transport whose connections honour ``deadline()``.

    httpx builds its connection pool without a way to pass a network backend, so the pool is
    rebuilt with the same TLS context and the backend above.
    """
    transport = httpx.HTTPTransport(**kwargs)
    pool = transport._pool
    if not isinstance(pool, httpcore.ConnectionPool):  # a proxy was configured
        return transport
    transport._pool = httpcore.ConnectionPool(
        ssl_context=pool._ssl_context,
        max_connections=pool._max_connections,
        max_keepalive_connections=pool._max_keepalive_connections,
        keepalive_expiry=pool._keepalive_expiry,
        http1=pool._http1,
        http2=pool._http2,
        retries=pool._retries,
        local_address=pool._local_address,
        uds=pool._uds,
        socket_options=pool._socket_options,
        network_backend=DeadlineBackend(network_backend),
    )
    return transport


def _decoder(encoding: str) -> typing.Any:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        # RFC 9110 says zlib-wrapped; some servers send raw deflate. Auto-detect the header.
        return zlib.decompressobj(zlib.MAX_WBITS | 32)
    raise BadEncoding(f"unexpected Content-Encoding {encoding!r}")


def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The decoded body of a streamed response, refusing more than ``limit`` decoded bytes."""
    declared: int | None = None
    length = response.headers.get("Content-Length", "")
    encoding = response.headers.get("Content-Encoding", "")
    if length.isdigit():
        declared = int(length)
        if declared > limit and encoding.strip().lower() in ("", "identity"):
            raise BodyTooLarge(limit, declared)
    decoder = _decoder(encoding)
    body = bytearray()

    def take(data: bytes) -> None:
        body.extend(data)
        if len(body) > limit:
            raise BodyTooLarge(limit, declared if decoder is None else None)

    try:
        for raw in response.iter_raw():
            if decoder is None:
                take(raw)
                continue
            data = raw
            while data:
                # Never more than one byte past the limit per step: a bomb stays small.
                take(decoder.decompress(data, limit - len(body) + 1))
                data = decoder.unconsumed_tail
        if decoder is not None:
            take(decoder.flush())
    except zlib.error as exc:
        raise BadEncoding(f"corrupt {encoding} data") from exc
    return bytes(body)
