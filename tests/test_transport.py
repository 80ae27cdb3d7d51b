"""The Perplexity transport (``sonarweb.perplexity.transport``) over real sockets.

A small keep-alive HTTP/1.1 server on loopback answers, drips, stalls or swells as each test
needs, and counts the connections it accepted, so reuse from the pool and refusals before
any connection are shown from the server's side. Nothing here is mocked.
"""

from __future__ import annotations

import gzip
import http.server
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest

from sonarweb import deadlines
from sonarweb.media.errors import AddressRefused
from sonarweb.media.network import VettedBackend
from sonarweb.perplexity import transport as wire

HELLO = json.dumps({"hello": "world"}).encode()
MB = 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers by path; ``server`` is a ``Server``."""

    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle and delayed ACKs
        # add 40 ms to every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: object) -> None:
        pass

    def head(self, status: int = 200, **fields: str) -> None:
        self.send_response(status)
        for name, value in fields.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = getattr(self, "get_" + url.path.strip("/"), None)
        if route is None:
            self.head(404, Content_Length="0")
            return
        route(query)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = json.dumps({"received": len(body), "echo": json.loads(body)}).encode()
        self.head(200, Content_Length=str(len(answer)))
        self.wfile.write(answer)

    def get_hello(self, query: dict[str, str]) -> None:
        self.head(200, Content_Type="application/json", Content_Length=str(len(HELLO)))
        self.wfile.write(HELLO)

    def get_drip(self, query: dict[str, str]) -> None:
        """``n`` bytes, one every ``every`` seconds: no read ever waits long."""
        count, every = int(query["n"]), float(query["every"])
        self.head(200, Content_Length=str(count))
        for _ in range(count):
            if self.server.stopping.wait(every):
                return
            self.wfile.write(b"x")

    def get_stall(self, query: dict[str, str]) -> None:
        """Headers, then silence until the server stops."""
        self.head(200, Content_Length="10")
        self.server.stopping.wait(30)

    def get_big(self, query: dict[str, str]) -> None:
        """``n`` bytes, with Content-Length or chunked (undeclared)."""
        count = int(query["n"])
        chunk = b"\0" * 65536
        if query.get("declare") == "1":
            self.head(200, Content_Length=str(count))
            for start in range(0, count, len(chunk)):
                self.wfile.write(chunk[: count - start])
            return
        self.head(200, Transfer_Encoding="chunked")
        for start in range(0, count, len(chunk)):
            part = chunk[: count - start]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")

    def get_bomb(self, query: dict[str, str]) -> None:
        """A small gzip body that inflates to 200 MB."""
        self.head(200, Content_Encoding="gzip", Content_Length=str(len(BOMB)))
        self.wfile.write(BOMB)

    def get_halves(self, query: dict[str, str]) -> None:
        """One half of the body, then the other only once the client has read the first."""
        self.head(200, Content_Length="8")
        self.wfile.write(b"1234")
        self.wfile.flush()
        if self.server.first_half_read.wait(10):
            self.wfile.write(b"5678")


BOMB = gzip.compress(b"\0" * (200 * MB), compresslevel=9)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.stopping = threading.Event()
        self.first_half_read = threading.Event()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server_port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.stopping.set()
        running.shutdown()
        running.server_close()
        thread.join(5)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(transport=wire.DeadlineTransport(), trust_env=False) as client:
        yield client


def get(client: httpx.Client, url: str, limit: int = MB) -> tuple[httpx.Response, bytearray]:
    """A streamed GET read with the byte cap, as the Perplexity client reads."""
    response = client.send(client.build_request("GET", url), stream=True)
    try:
        return response, wire.read_capped(response, limit)
    finally:
        response.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


# -- requests and responses --------------------------------------------------------------------


def test_a_get_answers_over_a_real_socket(server, http):
    with deadlines.deadline(10):
        response, body = get(http, server.url("/hello"))
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"
    assert response.headers["content-type"] == "application/json"
    assert json.loads(body) == {"hello": "world"}
    assert server.connections == 1


def test_a_post_sends_its_body(server, http):
    with deadlines.deadline(10):
        response = http.post(server.url("/echo"), json={"query": "x" * 5000})
    assert response.json() == {
        "received": len(response.request.content),
        "echo": {"query": "x" * 5000},
    }


def test_the_second_request_reuses_the_pooled_connection(server, http):
    ports = []
    for _ in range(3):
        response, body = get(http, server.url("/hello"))
        assert body == HELLO
        ports.append(response.extensions["network_stream"].get_extra_info("client_addr")[1])
    assert server.connections == 1
    assert len(set(ports)) == 1


def test_the_pool_is_public_and_closes_with_the_transport(server):
    with wire.DeadlineTransport() as transport:
        with httpx.Client(transport=transport, trust_env=False) as client:
            get(client, server.url("/hello"))
            assert len(transport.pool.connections) == 1
            assert transport.pool.connections[0].is_idle()
    assert transport.pool.connections == []


def test_the_connection_limit_holds(server):
    transport = wire.DeadlineTransport(limits=httpx.Limits(max_connections=1))
    with httpx.Client(transport=transport, trust_env=False) as client:
        held = client.send(client.build_request("GET", server.url("/hello")), stream=True)
        waits = httpx.Timeout(5.0, pool=0.3)
        with pytest.raises(httpx.PoolTimeout):
            client.get(server.url("/hello"), timeout=waits)
        held.read()
        held.close()
        assert client.get(server.url("/hello"), timeout=waits).content == HELLO
    assert server.connections == 1


# -- time --------------------------------------------------------------------------------------


def test_a_dripping_body_ends_at_the_deadline_as_a_read_timeout(server, http):
    # 200 bytes at 0.05 s each: 10 s in all, though no single read waits more than 0.05 s.
    started = time.monotonic()
    with deadlines.deadline(0.5), pytest.raises(httpx.ReadTimeout) as info:
        get(http, server.url("/drip?n=200&every=0.05"))
    # The last read's socket timeout was clamped to the time left (or no time was left).
    assert isinstance(info.value.__cause__, httpcore.ReadTimeout)
    assert time.monotonic() - started < 8


def test_a_silent_server_trips_the_read_timeout(server, http):
    with pytest.raises(httpx.ReadTimeout) as info:
        http.get(server.url("/stall"), timeout=httpx.Timeout(10.0, read=0.3))
    assert isinstance(info.value.__cause__, httpcore.ReadTimeout)


def test_a_cancelled_call_is_a_read_error_caused_by_the_cancel(server, http):
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with deadlines.deadline(60, cancel), pytest.raises(httpx.ReadError) as info:
            get(http, server.url("/stall"))
    finally:
        timer.cancel()
    # The client tells a cancelled call from a broken one by this cause.
    assert isinstance(info.value.__cause__, deadlines.CallCancelled)
    assert time.monotonic() - started < 20


def test_a_deadline_already_passed_stops_before_connecting(server, http):
    with deadlines.deadline(0.05):
        time.sleep(0.1)
        with pytest.raises(httpx.ReadTimeout) as info:
            get(http, server.url("/hello"))
    assert isinstance(info.value.__cause__, deadlines.DeadlineExceeded)
    assert server.connections == 0


def test_errors_map_to_the_most_specific_httpx_class():
    assert wire.httpx_error_for(httpcore.ConnectTimeout()) is httpx.ConnectTimeout
    assert wire.httpx_error_for(deadlines.DeadlineExceeded()) is httpx.ReadTimeout
    assert wire.httpx_error_for(deadlines.CallCancelled()) is httpx.ReadError
    assert wire.httpx_error_for(httpcore.RemoteProtocolError()) is httpx.RemoteProtocolError
    assert wire.httpx_error_for(httpcore.UnsupportedProtocol()) is httpx.UnsupportedProtocol
    assert wire.httpx_error_for(ValueError()) is None


# -- addresses ---------------------------------------------------------------------------------


def test_a_refused_connection_is_a_connect_error(http):
    with deadlines.deadline(10), pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{closed_port()}/hello")


def test_an_unsupported_scheme_is_refused_before_connecting(http):
    with pytest.raises(httpx.UnsupportedProtocol):
        http.get("ftp://127.0.0.1/hello")


def test_an_address_guard_refuses_loopback_before_connecting(server):
    # A made-up name resolving to loopback: the guard vets the address it would connect to.
    guard = VettedBackend(allow=(), resolver=lambda host, port: ["127.0.0.1"])
    with httpx.Client(transport=wire.DeadlineTransport(guard), trust_env=False) as client:
        with deadlines.deadline(10), pytest.raises(AddressRefused) as info:
            client.get(server.url("/hello", host="upstream.example.test"))
    assert info.value.address == "127.0.0.1"
    assert server.connections == 0


def test_an_address_guard_lets_allowed_addresses_through(server):
    guard = VettedBackend(allow={"loopback"}, resolver=lambda host, port: ["127.0.0.1"])
    with httpx.Client(transport=wire.DeadlineTransport(guard), trust_env=False) as client:
        with deadlines.deadline(10):
            response, body = get(client, server.url("/hello", host="upstream.example.test"))
            peer = response.extensions["network_stream"].get_extra_info("server_addr")
    assert body == HELLO
    assert peer[0] == "127.0.0.1"
    assert server.connections == 1


# -- size --------------------------------------------------------------------------------------


def test_the_body_streams_in_as_it_arrives(server, http):
    with deadlines.deadline(10):
        response = http.send(http.build_request("GET", server.url("/halves")), stream=True)
        try:
            chunks = response.iter_raw()
            # The server sends the rest only after this: a buffering transport would hang.
            assert next(chunks) == b"1234"
            server.first_half_read.set()
            assert b"".join(chunks) == b"5678"
        finally:
            response.close()


@pytest.mark.parametrize("declare", ["1", "0"])
def test_a_body_over_the_cap_is_refused(server, http, declare):
    with deadlines.deadline(30), pytest.raises(wire.BodyTooLarge) as info:
        get(http, server.url(f"/big?n={20 * MB}&declare={declare}"), limit=64 * 1024)
    assert info.value.limit == 64 * 1024
    assert info.value.declared == (20 * MB if declare == "1" else None)


def test_a_body_at_the_cap_is_read_whole(server, http):
    with deadlines.deadline(30):
        _, body = get(http, server.url(f"/big?n={MB}&declare=0"), limit=MB)
    assert len(body) == MB


def test_a_gzip_bomb_stops_one_byte_past_the_cap(server):
    headers = {"Accept-Encoding": wire.ACCEPT_ENCODING}
    with httpx.Client(transport=wire.DeadlineTransport(), headers=headers) as client:
        response = client.send(client.build_request("GET", server.url("/bomb")), stream=True)
        try:
            with deadlines.deadline(30), pytest.raises(wire.BodyTooLarge) as info:
                wire.read_capped(response, MB)
        finally:
            response.close()
    assert info.value.declared is None


def test_no_private_name_of_another_library_is_used():
    # The brief's grep: no attribute access to a name starting with "_" at all.
    source = Path(wire.__file__).read_text(encoding="utf-8")
    assert re.findall(r"\._[a-z]\w*", source) == []
