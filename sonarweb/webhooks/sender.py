"""One POST to an endpoint, as guarded as the image fetcher's GETs (``sonarweb.media``).

- http and https only, no credentials in the URL;
- the connection goes through ``media.network.VettedBackend``: the host is resolved once,
  every address is vetted (``media.addresses``) and the socket connects to the vetted IP, so
  the address actually connected to is the one checked. Loopback and private addresses pass
  only with the endpoint's opt-in (when ``SONARWEB_WEBHOOKS_ALLOW_PRIVATE`` permits it);
  link-local (cloud metadata), multicast and reserved ones never do. A refused address is
  refused before any byte is sent to it;
- redirects are not followed: a 3xx is a failed attempt;
- one total deadline (15 s) for connect, TLS, request and response, checked on every socket
  operation (``sonarweb.deadlines``), and at most ``MAX_RESPONSE_BYTES`` of the answer read;
- httpcore directly, so nothing from the environment (proxies, .netrc, cookies) joins in.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpcore
import httpx

from sonarweb.deadlines import deadline
from sonarweb.media.addresses import PRIVATE_KINDS, classify
from sonarweb.media.errors import AddressRefused, ImageFailure, TooSlow, Unreachable
from sonarweb.media.fetch import connect_reason
from sonarweb.media.network import Resolver, VettedBackend

USER_AGENT = "sonarweb-webhooks/1"
TOTAL_SECONDS = 15.0
CONNECT_SECONDS = 5.0
# Of the answer, this much is read (its first line goes into the delivery's error).
MAX_RESPONSE_BYTES = 64 * 1024
ERROR_CHARS = 300
EXCERPT_CHARS = 120
# A Retry-After is honoured up to this long.
MAX_RETRY_AFTER_SECONDS = 12 * 3600


class TargetRefused(ValueError):
    """The URL may not be posted to: scheme, credentials, or an address it may not reach."""


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


def allowed_kinds(allow_private: bool) -> frozenset[str]:
    return frozenset(PRIVATE_KINDS) if allow_private else frozenset()


def checked_url(url: str) -> httpx.URL:
    """The URL parsed, if it is one we may post to; TargetRefused otherwise."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise TargetRefused("The address is not a valid URL.") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("Only http and https addresses can receive webhooks.")
    if not parsed.host:
        raise TargetRefused("The address has no host.")
    if parsed.userinfo:
        raise TargetRefused("The address carries a user name or password; leave them out.")
    return parsed


def literal_refusal(url: httpx.URL, allow: Collection[str]) -> str:
    """Why an address written as an IP (or ``localhost``) may not be reached, or "".

    For the form's early word only: the check that counts runs on the address connected to.
    """
    host = url.host
    kind = "loopback" if host == "localhost" or host.endswith(".localhost") else ""
    if not kind:
        try:
            kind = classify(host)
        except ValueError:
            return ""
    if kind == "public" or kind in allow:
        return ""
    return refusal_sentence(kind, host)


def refusal_sentence(kind: str, address: str) -> str:
    if kind in PRIVATE_KINDS:
        return (
            f"Refused: the address is {kind} ({address}). Tick “allow private network” "
            "for a receiver on your own network, if this server permits it."
        )
    return f"Refused: the address is {kind} ({address}), which webhooks never reach."


def retry_after_seconds(value: str, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (a number, or an HTTP date), within MAX_RETRY_AFTER_SECONDS."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), float(MAX_RETRY_AFTER_SECONDS))


def _read_some(response: httpcore.Response) -> bytes:
    """At most MAX_RESPONSE_BYTES of the answer; the rest is never read."""
    body = bytearray()
    for chunk in response.iter_stream():
        body += chunk
        if len(body) >= MAX_RESPONSE_BYTES:
            break
    return bytes(body[:MAX_RESPONSE_BYTES])


def _describe_status(status: int, body: bytes) -> str:
    if 200 <= status < 300:
        return ""
    if 300 <= status < 400:
        return f"HTTP {status}: a redirect, which webhooks do not follow."
    # The answer's first characters, on one line and printable.
    line = " ".join(body.decode("utf-8", "replace").split())
    excerpt = "".join(ch for ch in line if ch.isprintable())[:EXCERPT_CHARS]
    return f"HTTP {status}" + (f": {excerpt}" if excerpt else ".")


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_private: bool = False,
    resolver: Resolver | None = None,
) -> Outcome:
    """POST ``body`` to ``url`` once; never raises for anything the network or the receiver
    does. ``resolver`` maps names to addresses (tests); the system's by default."""
    started = time.monotonic()
    outcome = _post(url, body, headers, allow_private, resolver)
    elapsed = int((time.monotonic() - started) * 1000)
    return Outcome(outcome.status_code, outcome.error[:ERROR_CHARS], outcome.retry_after, elapsed)


def _post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    allow_private: bool,
    resolver: Resolver | None,
) -> Outcome:
    try:
        target = checked_url(url)
    except TargetRefused as exc:
        return Outcome(error=str(exc))
    allow = allowed_kinds(allow_private)
    backend = VettedBackend(allow=allow, connect_timeout=CONNECT_SECONDS, resolver=resolver)
    pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        network_backend=backend,
        max_connections=1,
        max_keepalive_connections=0,
        http1=True,
        http2=False,
        retries=0,
    )
    request_headers = [
        (b"Host", target.netloc),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Content-Type", b"application/json"),
        (b"Accept-Encoding", b"identity"),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
    ]
    address = httpcore.URL(
        scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path
    )
    timeouts = {"connect": CONNECT_SECONDS, "read": None, "write": None, "pool": None}
    try:
        with pool, deadline(TOTAL_SECONDS):
            with pool.stream(
                "POST",
                address,
                headers=request_headers,
                content=body,
                extensions={"timeout": timeouts},
            ) as response:
                status = response.status
                answer = b"" if 300 <= status < 400 else _read_some(response)
                retry_after = httpx.Headers(response.headers).get("Retry-After", "")
                retry = retry_after_seconds(retry_after)
                return Outcome(status, _describe_status(status, answer), retry_after=retry)
    except AddressRefused as exc:
        return Outcome(error=refusal_sentence(exc.kind, exc.address))
    except httpcore.TimeoutException:
        return Outcome(error=f"No answer within {TOTAL_SECONDS:g} s.")
    except (TooSlow, Unreachable) as exc:
        # The guard's sentences speak of images; they are the same steps here.
        return Outcome(error=exc.reason.replace("image host", "receiver"))
    except httpcore.ConnectError as exc:
        return Outcome(error=connect_reason(exc).replace("image host", "receiver"))
    except ImageFailure as exc:
        return Outcome(error=f"Refused: {exc.reason}")
    except (httpcore.NetworkError, httpcore.ProtocolError):
        return Outcome(error="The connection to the receiver broke off.")
