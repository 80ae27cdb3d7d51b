"""The image fetcher against real servers on loopback: what it fetches, and each refusal.

Loopback is the only place tests may connect to, so the fetcher is told per test which
non-public kinds of address it may reach (``allow``): loopback for the servers here, never
the private or link-local addresses the refusal tests name (those are refused before any
connection is made, which the servers' connection counts show).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sonarweb.media.addresses import classify, vet
from sonarweb.media.errors import (
    AddressRefused,
    BadResponse,
    FetchRefused,
    TooLarge,
    TooSlow,
    Unreachable,
)
from sonarweb.media.fetch import FetchPolicy, ImageFetcher

from .media_helpers import (
    RawServer,
    answer,
    drip,
    endless,
    header_of,
    png,
    redirect,
    routes,
)

LOOPBACK = frozenset({"loopback"})
IMAGE = png()


def fetcher(allow=LOOPBACK, **policy) -> ImageFetcher:
    return ImageFetcher(FetchPolicy(allow=frozenset(allow), **policy))


@pytest.fixture
def image_server():
    with RawServer(answer(200, IMAGE, {"Content-Type": "image/png"})) as server:
        yield server


# -- what is sent, and what comes back ------------------------------------------------------


def test_fetches_the_bytes_and_sends_no_credentials(image_server):
    with fetcher() as f:
        fetched = f.fetch(image_server.url("/a.png?x=1"))
    assert fetched.body == IMAGE and fetched.content_type == "image/png"
    head = image_server.requests[0]
    assert head.startswith(b"GET /a.png?x=1 HTTP/1.1\r\n")
    assert header_of(head, "Host") == f"127.0.0.1:{image_server.port}"
    assert header_of(head, "Accept-Encoding") == "identity"
    for name in ("Cookie", "Authorization", "Proxy-Authorization", "Referer"):
        assert header_of(head, name) is None


def test_connects_to_the_vetted_address_and_keeps_the_name_in_host(image_server):
    lookups = []

    def resolver(host, port):
        lookups.append(host)
        return ["127.0.0.1"]

    with ImageFetcher(FetchPolicy(allow=LOOPBACK), resolver=resolver) as f:
        assert f.fetch(image_server.url(host="images.example")).body == IMAGE
    # One lookup for the one connection: nothing asks DNS again between vetting and connecting.
    assert lookups == ["images.example"]
    assert header_of(image_server.requests[0], "Host") == f"images.example:{image_server.port}"


# -- refusals before any connection ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/a.png",
        "http://192.168.1.20/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/a.png",
        "http://[::ffff:10.0.0.1]/a.png",
        "http://0.0.0.0/a.png",
    ],
)
def test_private_ip_literals_are_refused(url):
    with fetcher(allow=()) as f, pytest.raises(AddressRefused):
        f.fetch(url)


def test_loopback_is_refused_unless_allowed(image_server):
    for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "2130706433"):
        with fetcher(allow=()) as f, pytest.raises(AddressRefused) as refused:
            f.fetch(image_server.url(host=host))
        assert refused.value.kind == "loopback"
    assert image_server.connections == 0


def test_a_name_that_resolves_to_loopback_is_refused(image_server):
    # The real resolver: localhost is loopback on every machine.
    with fetcher(allow=()) as f, pytest.raises(AddressRefused) as refused:
        f.fetch(image_server.url(host="localhost"))
    assert "loopback" in refused.value.reason
    assert image_server.connections == 0


def test_a_made_up_name_mapped_to_loopback_is_refused(image_server):
    with ImageFetcher(FetchPolicy(), resolver=lambda host, port: ["127.0.0.1"]) as f:
        with pytest.raises(AddressRefused):
            f.fetch(image_server.url(host="evil.example"))
    assert image_server.connections == 0


def test_one_bad_address_among_good_ones_refuses_the_host():
    assert vet(["8.8.8.8", "2606:4700::1111"]) == ["8.8.8.8", "2606:4700::1111"]
    with pytest.raises(AddressRefused):
        vet(["8.8.8.8", "127.0.0.1"])


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", "public"),
        ("2606:4700::1111", "public"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "private"),
        ("fc00::1", "private"),
        ("::ffff:192.168.0.1", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to classify, not to bind
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
    ],
)
def test_address_kinds(address, kind):
    assert classify(address) == kind


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/a.png",
        "file:///etc/passwd",
        "gopher://example.org/",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)",
        "http://user:secret@example.org/a.png",
        "http:///a.png",
        "not a url",
    ],
)
def test_only_plain_http_and_https_urls(url):
    with fetcher(allow=()) as f, pytest.raises(FetchRefused):
        f.fetch(url)


# -- redirects ------------------------------------------------------------------------------


def test_follows_up_to_three_redirects_each_checked():
    with RawServer(
        routes(
            {
                "/1": redirect("/2", 301),
                "/2": redirect("/3", 307),
                "/3": redirect("/img", 308),
                "/img": answer(200, IMAGE),
            }
        )
    ) as server:
        with fetcher() as f:
            fetched = f.fetch(server.url("/1"))
    assert fetched.body == IMAGE and len(fetched.redirects) == 3
    assert fetched.url.endswith("/img")


def test_a_fourth_redirect_is_refused():
    table = {f"/{i}": redirect(f"/{i + 1}") for i in range(4)}
    with RawServer(routes({**table, "/4": answer(200, IMAGE)})) as server:
        with fetcher() as f, pytest.raises(FetchRefused, match="more than 3"):
            f.fetch(server.url("/0"))


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/a.png",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://inside.example/a.png",  # resolves (below) to a private address
    ],
)
def test_a_redirect_to_a_private_address_is_refused(target):
    def resolver(host, port):
        return {"inside.example": ["10.20.30.40"]}.get(host, ["127.0.0.1"])

    with RawServer(routes({"/a.png": redirect(target)})) as server:
        with ImageFetcher(FetchPolicy(allow=LOOPBACK), resolver=resolver) as f:
            with pytest.raises(AddressRefused):
                f.fetch(server.url("/a.png"))
        assert server.connections == 1  # the first hop only


def test_a_redirect_to_another_scheme_is_refused():
    with RawServer(redirect("file:///etc/passwd")) as server:
        with fetcher() as f, pytest.raises(FetchRefused):
            f.fetch(server.url())


# -- size and time --------------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_over_the_cap_is_refused_while_streaming(declare_length):
    with RawServer(endless(declare_length)) as server:
        started = time.monotonic()
        with fetcher(max_bytes=256 * 1024) as f, pytest.raises(TooLarge, match="larger than"):
            f.fetch(server.url())
        # Refused at the cap, not after the 200 MB the server would send.
        assert time.monotonic() - started < 20


def test_a_body_exactly_at_the_cap_is_kept():
    body = b"\x89PNG" + b"\0" * 1020
    with RawServer(answer(200, body)) as server, fetcher(max_bytes=1024) as f:
        assert f.fetch(server.url()).body == body


def test_a_slow_drip_hits_the_total_deadline():
    with RawServer(drip(60)) as server:
        started = time.monotonic()
        with fetcher(timeout=1.0) as f, pytest.raises(TooSlow):
            f.fetch(server.url())
        # Each byte arrives well within any per-read timeout; only a total deadline stops it.
        assert time.monotonic() - started < 20


def test_headers_that_drip_hit_the_total_deadline():
    with RawServer(drip(60, in_headers=True)) as server:
        started = time.monotonic()
        with fetcher(timeout=1.0) as f, pytest.raises(TooSlow):
            f.fetch(server.url())
        assert time.monotonic() - started < 20


def test_a_resolver_that_hangs_hits_the_deadline():
    release = threading.Event()

    def hanging(host, port):
        release.wait(60)
        return ["127.0.0.1"]

    try:
        started = time.monotonic()
        with ImageFetcher(FetchPolicy(allow=LOOPBACK, timeout=1.0), resolver=hanging) as f:
            with pytest.raises(TooSlow) as slow:
                f.fetch("http://slow-dns.example/a.png")
        assert slow.value.retryable
        assert time.monotonic() - started < 20
    finally:
        release.set()


# -- answers that are not the image ---------------------------------------------------------


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (403, False), (503, True)])
def test_error_statuses(status, retryable):
    with RawServer(answer(status, b"nope")) as server, fetcher() as f:
        with pytest.raises(BadResponse, match=str(status)) as failed:
            f.fetch(server.url())
    assert failed.value.retryable is retryable


def test_an_encoded_body_is_refused():
    headers = {"Content-Encoding": "gzip"}
    with RawServer(answer(200, b"\x1f\x8b" + b"\0" * 20, headers)) as server, fetcher() as f:
        with pytest.raises(BadResponse, match="compressed"):
            f.fetch(server.url())


def test_nothing_listening_is_unreachable_and_retryable():
    server = RawServer(answer(200))
    url = server.url()
    server.stop()
    with fetcher() as f, pytest.raises(Unreachable) as failed:
        f.fetch(url)
    assert failed.value.retryable


# -- TLS: the connection goes to the vetted IP, the certificate is checked on the name -----


def _certificate(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for ``name``, client context trusting its CA)."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject, issuer, key, signer, *, ca: bool, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sonarweb test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    san = [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = build(leaf_name, ca_name, key, ca_key, ca=False, san=san)
    pem = serialization.Encoding.PEM
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "leaf.pem", tmp / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


def test_https_checks_the_certificate_against_the_name_not_the_address(tmp_path):
    server_tls, client_tls = _certificate(tmp_path, "images.test")
    resolver = {"images.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
    with RawServer(answer(200, IMAGE), tls=server_tls) as server:
        with ImageFetcher(
            FetchPolicy(allow=LOOPBACK),
            resolver=lambda host, port: resolver[host],
            ssl_context=client_tls,
        ) as f:
            assert f.fetch(server.url(host="images.test")).body == IMAGE
            # The same server and address under a name its certificate does not carry.
            with pytest.raises(Unreachable, match="certificate"):
                f.fetch(server.url(host="other.test"))
