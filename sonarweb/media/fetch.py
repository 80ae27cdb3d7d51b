"""Fetch one image URL from the web, as safely as a server-side fetch of untrusted URLs can be.

- http and https only; a URL with credentials in it is refused;
- every connection goes through ``network.VettedBackend``: resolved once, every address
  vetted, connected to the vetted IP (see ``addresses`` and ``network``);
- at most ``max_redirects`` redirects, followed here one by one, each hop checked the same way;
- no cookies, no credentials, no Authorization, no Referer: httpcore sends only the headers
  ``_get`` lists (httpx would add cookies, .netrc credentials and proxies from the
  environment, which is why this module speaks httpcore directly);
- one total deadline for connect, headers and body together, checked on every socket
  operation, and a byte cap checked as the body streams in. Encoded bodies are refused:
  we ask for ``identity``, so the bytes counted are the bytes Pillow will read.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpcore
import httpx

from sonarweb.deadlines import deadline

from . import conf
from .addresses import PRIVATE_KINDS
from .errors import BadResponse, FetchRefused, TooLarge, TooSlow, Unreachable
from .network import Resolver, VettedBackend

USER_AGENT = "sonarweb-image-archiver/0.1"
# No SVG: it is a document, not a picture, and is refused after download anyway.
ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif;q=0.9,image/*;q=0.5"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Answers worth asking again later: the host may be busy rather than wrong.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = 10 * conf.MEGABYTE
    timeout: float = 20.0
    connect_timeout: float = 5.0
    # Non-public address kinds that may be reached (addresses.KINDS); none in production.
    allow: frozenset[str] = frozenset()
    max_redirects: int = 3

    @classmethod
    def from_settings(cls) -> FetchPolicy:
        return cls(
            max_bytes=int(conf.setting("SONARWEB_IMAGE_MAX_BYTES")),
            timeout=float(conf.setting("SONARWEB_IMAGE_TIMEOUT")),
            connect_timeout=float(conf.setting("SONARWEB_IMAGE_CONNECT_TIMEOUT")),
            allow=PRIVATE_KINDS if conf.setting("SONARWEB_IMAGES_ALLOW_PRIVATE") else frozenset(),
        )


@dataclass(frozen=True)
class Fetched:
    url: str  # where the bytes came from, after redirects
    body: bytes
    content_type: str = ""
    redirects: tuple[str, ...] = ()


def checked_url(url: str | httpx.URL) -> httpx.URL:
    """The URL parsed, if it is one we may fetch; FetchRefused otherwise."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchRefused("The image address is not a valid URL.") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchRefused("Only http and https image addresses are fetched.")
    if not parsed.host:
        raise FetchRefused("The image address has no host.")
    if parsed.userinfo:
        raise FetchRefused("The image address carries credentials; it is not fetched.")
    return parsed


class ImageFetcher:
    """Fetches image URLs under one policy; keeps connections to a host for the next image.

    Use as a context manager (or call ``close``). Not shared between threads.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy.from_settings()
        backend = VettedBackend(
            allow=self.policy.allow,
            connect_timeout=self.policy.connect_timeout,
            resolver=resolver,
        )
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            network_backend=backend,
            max_connections=4,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            retries=0,
        )

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> ImageFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, url: str, *, timeout: float | None = None) -> Fetched:
        """The body of the image at ``url``, or an ``ImageFailure`` saying why not.

        ``timeout`` shortens the policy's total deadline (an answer's time budget running out).
        """
        limit = self.policy.timeout if timeout is None else min(timeout, self.policy.timeout)
        with deadline(limit):
            try:
                return self._follow(checked_url(url))
            except (httpcore.TimeoutException, TooSlow) as exc:
                raise TooSlow(f"The image did not arrive within {limit:g} s.") from exc
            except httpcore.ConnectError as exc:
                raise Unreachable(connect_reason(exc)) from exc
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                raise Unreachable("The connection to the image host broke off.") from exc

    def _follow(self, url: httpx.URL) -> Fetched:
        hops: list[str] = []
        while True:
            location = self._get(url, hops)
            if isinstance(location, Fetched):
                return location
            if len(hops) >= self.policy.max_redirects:
                raise FetchRefused(
                    f"The image address redirects more than {self.policy.max_redirects} times."
                )
            hops.append(str(url))
            try:
                url = checked_url(url.join(location))
            except httpx.InvalidURL as exc:
                raise FetchRefused("The image address redirects to an invalid URL.") from exc

    def _get(self, url: httpx.URL, hops: list[str]) -> Fetched | str:
        """The image, or the Location a redirect points at."""
        target = httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        )
        # The real limit is the deadline, which every socket operation checks; these only
        # keep httpcore from applying defaults of its own.
        timeouts = {"connect": self.policy.connect_timeout, "read": None, "write": None}
        headers = [
            # The name as written, though the socket goes to the vetted IP: virtual hosts work.
            (b"Host", url.netloc),
            (b"User-Agent", USER_AGENT.encode()),
            (b"Accept", ACCEPT.encode()),
            (b"Accept-Encoding", b"identity"),
        ]
        too_large = f"The image is larger than {self.policy.max_bytes / conf.MEGABYTE:g} MB."
        with self._pool.stream(
            "GET", target, headers=headers, extensions={"timeout": timeouts}
        ) as response:
            status = response.status
            headers = httpx.Headers(response.headers)
            if status in REDIRECTS:
                location = headers.get("location", "")
                if not location:
                    raise BadResponse(f"The image host answered a redirect ({status}) to nowhere.")
                return location
            if status != 200:
                raise BadResponse(
                    f"The image host answered HTTP {status}.",
                    retryable=status in RETRYABLE_STATUSES,
                )
            encoding = headers.get("content-encoding", "").lower()
            if encoding not in ("", "identity"):
                raise BadResponse(
                    f"The image host sent a compressed ({encoding[:20]}) body though asked not to."
                )
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.policy.max_bytes:
                raise TooLarge(too_large)
            body = bytearray()
            for chunk in response.iter_stream():
                body += chunk
                if len(body) > self.policy.max_bytes:
                    raise TooLarge(too_large)
            return Fetched(
                url=str(url),
                body=bytes(body),
                content_type=headers.get("content-type", ""),
                redirects=tuple(hops),
            )


def connect_reason(exc: Exception) -> str:
    text = str(exc)
    if "CERTIFICATE" in text.upper() or "hostname" in text.lower():
        return "The image host's TLS certificate is not valid for its name."
    if "SSL" in text.upper() or "TLS" in text.upper():
        return "The TLS handshake with the image host failed."
    return "The image host could not be reached."
