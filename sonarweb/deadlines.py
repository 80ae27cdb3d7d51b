"""One deadline for a whole HTTP call, however slowly its bytes arrive (httpcore only).

httpx's and httpcore's timeouts are per operation: a server that sends one byte every second
never trips a read timeout, so a call could last for hours. Inside ``deadline(seconds)``
every socket operation of a ``DeadlineStream`` (connect, TLS handshake, each write and each
read) gets a timeout clamped to the time left, so the whole call ends by the deadline. A
``cancel`` event makes a blocked read let go within about half a second. The Perplexity
client (``sonarweb/perplexity/transport.py``) and the image fetcher (``sonarweb/media``) both
build their connections on this.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import threading
import time
import typing
from collections.abc import Iterator

import httpcore

# The call in progress: when it must end, and the event that cancels it (if any).
_call: contextvars.ContextVar[tuple[float, threading.Event | None] | None] = contextvars.ContextVar(
    "sonarweb_call", default=None
)
# A blocking socket operation wakes at least this often to see whether the call was cancelled.
CANCEL_CHECK_SECONDS = 0.5


class DeadlineExceeded(httpcore.ReadTimeout):
    """The call's total deadline passed (mapped by httpx to a ReadTimeout)."""


class CallCancelled(httpcore.ReadError):
    """Whoever made the call gave up on it (a refresher shutting down)."""


@contextlib.contextmanager
def deadline(seconds: float, cancel: threading.Event | None = None) -> Iterator[float]:
    """Every socket operation inside this block ends by ``seconds`` from now, or soon after
    ``cancel`` is set."""
    at = time.monotonic() + seconds
    token = _call.set((at, cancel))
    try:
        yield at
    finally:
        _call.reset(token)


def time_left(timeout: float | None) -> float | None:
    """The socket timeout to use now: the operation's own, clamped to the deadline."""
    call = _call.get()
    if call is None:
        return timeout
    at, cancel = call
    if cancel is not None and cancel.is_set():
        raise CallCancelled("the call was cancelled")
    left = at - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the call's total deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A stream whose every read, write and TLS handshake honours the call's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        call = _call.get()
        if call is None or call[1] is None:
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
        return DeadlineStream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)
