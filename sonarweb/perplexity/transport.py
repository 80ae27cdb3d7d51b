"""HTTP plumbing with a total deadline and a byte cap, for calls to hosts we do not control.

Every connection goes through ``sonarweb.deadlines``, so a call ends by its deadline however
slowly its bytes trickle in.

The body is read raw and decoded here, not by httpx, so that a decompression bomb is caught
after at most ``limit + 1`` decoded bytes: zlib is asked for no more than that per step.
"""

from __future__ import annotations

import typing
import zlib

import httpcore
import httpx

from sonarweb import deadlines
from sonarweb.deadlines import DeadlineStream

# What we accept on the wire: both decode with zlib, step by step.
ACCEPT_ENCODING = "gzip, deflate"


class BodyTooLarge(Exception):
    """The body, decoded, is larger than the limit. ``declared`` is Content-Length if known."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit
        self.declared = declared


class BadEncoding(Exception):
    """The body's Content-Encoding is one we did not ask for, or its data is corrupt."""


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
            host, port, deadlines.time_left(timeout), local_address, socket_options
        )
        return DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(
            path, deadlines.time_left(timeout), socket_options
        )
        return DeadlineStream(stream)

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


def read_capped(response: httpx.Response, limit: int) -> bytearray:
    """The decoded body of a streamed response, refusing more than ``limit`` decoded bytes.

    The buffer it was read into is returned as it is, not copied to ``bytes``: for a 30 MB
    answer that copy alone was 30 MB more at the moment the call's memory peaks.
    """
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
    return body
