"""HTTP plumbing with a total deadline and a byte cap, for calls to hosts we do not control.

Every connection goes through ``sonarweb.deadlines``, so a call ends by its deadline however
slowly its bytes trickle in.

httpx's own ``HTTPTransport`` builds its httpcore pool with no way to pass a network backend,
so ``DeadlineTransport`` is a small ``httpx.BaseTransport`` of its own over httpcore's public
``ConnectionPool``: it maps requests, responses and exceptions between the two libraries the
way httpx does, and nothing in it reaches into either library's private names.

The body is read raw and decoded here, not by httpx, so that a decompression bomb is caught
after at most ``limit + 1`` decoded bytes: zlib is asked for no more than that per step.
"""

from __future__ import annotations

import contextlib
import typing
import zlib
from collections.abc import Iterator

import httpcore
import httpx

from sonarweb import deadlines
from sonarweb.deadlines import DeadlineStream

# What we accept on the wire: both decode with zlib, step by step.
ACCEPT_ENCODING = "gzip, deflate"

# The pool size httpx.HTTPTransport uses when it is given no limits (httpx 0.28).
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

# httpcore's exceptions and the httpx ones httpx itself turns them into.
ERROR_MAP: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
)


class BodyTooLarge(Exception):
    """The body, decoded, is larger than the limit. ``declared`` is Content-Length if known."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit
        self.declared = declared


class BadEncoding(Exception):
    """The body's Content-Encoding is one we did not ask for, or its data is corrupt."""


def httpx_error_for(exc: Exception) -> type[httpx.HTTPError] | None:
    """The most specific httpx exception class for an httpcore one; None for anything else."""
    found: type[httpx.HTTPError] | None = None
    for core_class, httpx_class in ERROR_MAP:
        if isinstance(exc, core_class) and (found is None or issubclass(httpx_class, found)):
            found = httpx_class
    return found


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    """Re-raise httpcore's exceptions as httpx's, chained, as httpx's own transport does.

    The chain matters: the client tells a cancelled call (``deadlines.CallCancelled``) from a
    broken one by the ``__cause__`` of the httpx error. Anything else (a guard's refusal from a
    network backend, say) passes through unchanged.
    """
    try:
        yield
    except Exception as exc:
        mapped = httpx_error_for(exc)
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, with every operation bounded by the call's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self.backend = backend or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.backend.connect_tcp(
            host, port, deadlines.time_left(timeout), local_address, socket_options
        )
        return DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class CoreResponseStream(httpx.SyncByteStream):
    """An httpcore response body as an httpx stream, its errors mapped as they arrive."""

    def __init__(self, stream: typing.Any) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with httpx_errors():
            yield from self.stream

    def close(self) -> None:
        # httpcore's stream gives its connection back to the pool (or closes it) here.
        self.stream.close()


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport whose connections honour ``deadline()``.

    Built as ``httpx.HTTPTransport`` builds its pool (same TLS and pool defaults), with no
    proxy: upstream is reached directly, as the client's ``trust_env=False`` also ensures. A
    ``network_backend`` (a guard that vets addresses, say) is wrapped in the deadline backend.
    """

    def __init__(
        self,
        network_backend: httpcore.NetworkBackend | None = None,
        *,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        self.pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(network_backend),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("DeadlineTransport sends synchronous requests only.")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with httpx_errors():
            core_response = self.pool.handle_request(core_request)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=CoreResponseStream(core_response.stream),
            extensions=core_response.extensions,
        )

    def close(self) -> None:
        self.pool.close()


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
