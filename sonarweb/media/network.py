"""The socket layer of the image fetcher: vetted connections and one deadline for everything.

``VettedBackend`` is an httpcore network backend. Its ``connect_tcp`` resolves the host once,
vets every address (``addresses.vet``) and connects to the vetted IP itself, so a second DNS
answer can never swap in another address (DNS rebinding). httpcore still hands the host name
to ``start_tls``, so SNI and the certificate check are on the name, and the caller sends the
name in ``Host``.

Every socket operation (connect, TLS handshake, each read and write) is clamped to the time
left before the fetch's deadline (``sonarweb.deadlines``, shared with the Perplexity client):
httpcore's per-read timeout alone would let a server drip one byte a second for ever.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable
from queue import Empty, SimpleQueue
from typing import Any

import httpcore

from sonarweb.deadlines import DeadlineStream, time_left

from .addresses import vet
from .errors import FetchRefused, TooSlow, Unreachable

# A resolver maps (host, port) to IP address strings. The default is the system's
# getaddrinfo; tests pass a function that maps made-up names to loopback.
Resolver = Callable[[str, int], list[str]]

# Lookups run in their own threads because getaddrinfo has no timeout. They are daemon
# threads, so a resolver that hangs never holds up a process that is stopping; the semaphore
# bounds how many can hang at once.
_LOOKUPS = threading.BoundedSemaphore(8)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # Each address once, in the resolver's order.
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in infos))


def resolve(resolver: Resolver, host: str, port: int, timeout: float) -> list[str]:
    """The host's addresses, or an ImageFailure; returns within about ``timeout`` seconds."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    started = time.monotonic()
    if not _LOOKUPS.acquire(timeout=timeout):
        raise TooSlow("The image host's name could not be looked up in time.")
    answers: SimpleQueue[tuple[bool, Any]] = SimpleQueue()

    def lookup() -> None:
        try:
            answers.put((True, resolver(host, port)))
        except Exception as exc:
            answers.put((False, exc))
        finally:
            _LOOKUPS.release()

    threading.Thread(target=lookup, name="media-dns", daemon=True).start()
    try:
        ok, value = answers.get(timeout=max(0.0, timeout - (time.monotonic() - started)))
    except Empty:
        raise TooSlow("The image host's name did not resolve in time.") from None
    if not ok:
        raise Unreachable("The image host's name does not resolve.") from value
    return list(value)


class VettedBackend(httpcore.NetworkBackend):
    """Connects only to addresses ``addresses.vet`` allows, resolving each host once."""

    def __init__(
        self,
        *,
        allow: Collection[str] = (),
        connect_timeout: float = 5.0,
        resolver: Resolver | None = None,
    ) -> None:
        self.allow = frozenset(allow)
        self.connect_timeout = connect_timeout
        self.resolver = resolver or system_resolver
        self._plain = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        limit = time_left(min(timeout or self.connect_timeout, self.connect_timeout))
        assert limit is not None
        addresses = vet(resolve(self.resolver, host, port, limit), allow=self.allow)
        failure: Exception | None = None
        for address in addresses:
            # A numeric host: create_connection's getaddrinfo parses it without any lookup.
            try:
                stream = self._plain.connect_tcp(
                    address, port, timeout=time_left(self.connect_timeout), socket_options=()
                )
            except httpcore.ConnectTimeout:
                raise TooSlow("The image host did not accept a connection in time.") from None
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return DeadlineStream(stream)
        raise Unreachable("The image host refused the connection.") from failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise FetchRefused("Images are fetched over TCP only.")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
