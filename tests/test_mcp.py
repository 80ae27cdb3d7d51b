"""The MCP server at /mcp, live: sonarweb.asgi served by uvicorn on a loopback port, the
simulator as Perplexity, the refresher moving statuses, and the `mcp` SDK's own client
(streamable HTTP + ClientSession) as the agent. Also: plain gunicorn, run as the image runs it,
serves /mcp on MCP_PORT beside the site."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from django.test import Client
from django.utils import timezone
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from sonarweb.api import tokens
from sonarweb.api.models import Scope
from sonarweb.api.sections import split_sections
from sonarweb.mcpserver import server as mcp_server
from sonarweb.tracker.models import AnswerArchive, TrackedRequest

from .conftest import archived_request, make_member, wait_for
from .test_deploy_proxies import HOST, binary, certificate, main_conf, rewritten
from .test_image import (  # noqa: F401 - ``container`` is a fixture
    ROOT,
    container,
    entrypoint,
    free_port,
    healthcheck,
    run_role,
    stop,
    wait_until,
)

pytestmark = pytest.mark.live

TOKEN_SECRET = "tests-only-mcp-token-secret-51e0"
QUESTION = "How do sand batteries store heat for district heating?"
TOOLS = {
    "start_research",
    "get_research",
    "read_answer",
    "search_archive",
    "list_recent",
    "cancel_research",
    "wait_for_research",
}
_T = TypeVar("_T")


@pytest.fixture(autouse=True)
def _token_secret(settings) -> None:
    settings.SONARWEB_TOKEN_SECRET = TOKEN_SECRET


def make_token(user, scope: str = Scope.WRITE) -> str:
    _, plaintext = tokens.create_token(user, name="agent", scope=scope, expires_at=None)
    return plaintext


@dataclass
class Live:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"


@pytest.fixture
def live(transactional_db, settings) -> Iterator[Live]:
    """sonarweb.asgi (the MCP app beside Django) served by uvicorn in a thread."""
    from sonarweb.asgi import build

    port = free_port()
    config = uvicorn.Config(
        build(), host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), "uvicorn", timeout=30)
    assert server.started, "uvicorn did not start"
    yield Live(port)
    server.should_exit = True
    thread.join(timeout=30)
    assert not thread.is_alive(), "uvicorn did not stop"


def run_async(main: Callable[[], Awaitable[_T]]) -> _T:
    """``anyio.run(main)`` on a thread of its own. A browser test run earlier by the same
    pytest worker leaves Playwright's event loop running on the main thread, where another
    loop cannot start ("Already running asyncio in this thread")."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, main).result()


def with_session(
    url: str,
    token: str | None,
    body: Callable[[ClientSession], Awaitable[_T]],
    host: str | None = None,
) -> _T:
    """Run ``body`` with an initialized MCP client session over real HTTP."""

    async def main() -> _T:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if host:
            headers["Host"] = host
        timeout = httpx2.Timeout(30, read=120)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await body(session)

    return run_async(main)


def call(url: str, token: str | None, tool: str, **arguments: Any) -> CallToolResult:
    async def body(session: ClientSession) -> CallToolResult:
        return await session.call_tool(tool, arguments)

    return with_session(url, token, body)


def refusal(run: Callable[[], object]) -> str:
    """What the SDK's client raised (anyio wraps it in exception groups), as one text."""
    with pytest.raises(BaseException) as raised:
        run()

    def texts(exc: BaseException) -> list[str]:
        inner = getattr(exc, "exceptions", None)
        if inner:
            return [t for e in inner for t in texts(e)]
        return [f"{type(exc).__name__}: {exc}"]

    return " | ".join(texts(raised.value))


def out(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)


def initialize(live: Live, headers: dict[str, str]) -> httpx.Response:
    return initialize_at(live.url, headers)


def initialize_at(url: str, headers: dict[str, str]) -> httpx.Response:
    """A bare initialize request, as any client's first POST."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "tests", "version": "1"},
        },
    }
    return httpx.post(
        url,
        json=body,
        headers={"Accept": "application/json, text/event-stream", **headers},
        timeout=30,
        verify=False,  # noqa: S501 - behind a proxy example, its throwaway certificate
    )


# -- the whole journey ---------------------------------------------------------------------------


def test_an_agent_starts_waits_for_and_reads_research(
    live, sim_server, simulator, owner, refresher
):
    """start_research answers at once with poll_after_seconds; wait_for_research (calls of at
    most 50 s, progress notified) follows the refresher's statuses from the database; the
    answer is read section by section, and as a resource."""
    simulator.run_seconds = 4
    token = make_token(owner)
    progress: list[tuple[float, float | None, str | None]] = []
    waits: list[tuple[float, dict[str, Any]]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def journey(session: ClientSession) -> dict[str, Any]:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert names == TOOLS
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["sonarweb://requests/{id}/answer"]

        began = time.monotonic()
        started = out(
            await session.call_tool(
                "start_research",
                {"question": QUESTION, "preset": "fast", "idempotency_key": str(uuid.uuid4())},
            )
        )
        assert time.monotonic() - began < 10  # at once, not after the run
        assert isinstance(started["poll_after_seconds"], int) and started["poll_after_seconds"] > 0
        assert started["status"] in ("CREATED", "IN_PROGRESS") and not started["finished"]
        assert started["permalink"] == f"http://127.0.0.1:{live.port}/r/{started['id']}/"
        assert started["replayed"] is False
        assert "resp_" not in json.dumps(started)  # sonarweb's id, never upstream's

        for _ in range(12):
            began = time.monotonic()
            waited = await session.call_tool(
                "wait_for_research",
                {"id": started["id"], "timeout_seconds": 20},
                progress_callback=on_progress,
            )
            waits.append((time.monotonic() - began, out(waited)))
            if waits[-1][1]["finished"]:
                break
        got = out(await session.call_tool("get_research", {"id": started["id"]}))

        first = await session.call_tool("read_answer", {"id": started["id"]})
        sections = [out(first)]
        assert first.content[0].text.startswith(f"[{got['title']}: Section 1 of ")
        while sections[-1]["next_section"]:
            number = sections[-1]["next_section"]
            sections.append(
                out(
                    await session.call_tool("read_answer", {"id": started["id"], "section": number})
                )
            )
        page = out(await session.call_tool("read_answer", {"id": started["id"], "page": 1}))
        resource = await session.read_resource(f"sonarweb://requests/{started['id']}/answer")
        return {
            "started": started,
            "got": got,
            "sections": sections,
            "page": page,
            "resource": resource.contents[0].text,
        }

    seen = with_session(live.url, token, journey)
    started, got, sections = seen["started"], seen["got"], seen["sections"]

    # Waiting: every call well inside a client's 60 s, none past 50 s, until it finished.
    assert all(elapsed < 50.5 and o["waited_seconds"] <= 50 for elapsed, o in waits)
    assert waits[-1][1]["status"] == "COMPLETED" and waits[-1][1]["has_answer"]
    assert waits[-1][1]["changed"] is True and waits[-1][1]["settled"] is True
    assert progress and all(total is not None and total <= 50 for _, total, _ in progress)

    tracked = TrackedRequest.objects.get(slug=started["id"])
    markdown = AnswerArchive.objects.get(pk=tracked.pk).markdown
    assert markdown
    expected = split_sections(markdown)

    # get_research: status, summary, the section list, the numbered sources.
    assert got["status"] == "COMPLETED" and got["poll_after_seconds"] is None
    assert got["summary"] and markdown.startswith(got["summary"].rstrip("…"))
    assert len(got["summary"]) <= 601
    assert got["section_count"] == len(expected) == len(got["sections"])
    assert [s["heading"] for s in got["sections"]] == [s.heading for s in expected]
    assert got["sources"] and all(s["number"] >= 1 for s in got["sources"])
    assert got["answer_resource"] == f"sonarweb://requests/{started['id']}/answer"

    # read_answer: the first section without one, then each in turn, the whole answer.
    assert sections[0]["section"] == 1 and sections[0]["section_count"] == len(expected)
    assert [s["section"] for s in sections] == list(range(1, len(expected) + 1))
    assert "".join(s["markdown"] for s in sections) == markdown
    assert sections[-1]["next_section"] is None
    assert seen["page"]["page"] == 1 and seen["page"]["markdown"].startswith(markdown[:50])
    assert seen["resource"] == markdown


def test_the_mcp_app_and_the_api_share_one_idempotency_table(live, sim_server, simulator, owner):
    """The same Idempotency-Key from the API and from start_research is the same request:
    one upstream create. Another question with that key is refused."""
    simulator.run_seconds = 3600
    token = make_token(owner)
    key = str(uuid.uuid4())
    response = Client().post(
        "/api/v1/research",
        json.dumps({"question": QUESTION, "preset": "fast"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert response.status_code == 201, response.content
    through_api = response.json()

    again = out(
        call(
            live.url, token, "start_research", question=QUESTION, preset="fast", idempotency_key=key
        )
    )
    assert again["id"] == through_api["id"] and again["replayed"] is True
    assert simulator.calls.count(endpoint="start") == 1

    other = call(
        live.url,
        token,
        "start_research",
        question="Another question entirely",
        preset="fast",
        idempotency_key=key,
    )
    assert "another body" in error_text(other)
    assert simulator.calls.count(endpoint="start") == 1


def test_the_current_protocol_revision_works_too(live, sim_server, simulator, owner):
    """The SDK's high-level Client negotiates the newest revision (2026-07-28, one stateless
    request at a time): the token, the tools and progress work the same."""
    from mcp import Client

    simulator.run_seconds = 3600
    token = make_token(owner)
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def main() -> tuple[str, dict[str, Any], dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with Client(streamable_http_client(live.url, http_client=http)) as client:
                started = await client.call_tool(
                    "start_research", {"question": QUESTION, "idempotency_key": "now-1"}
                )
                waited = await client.call_tool(
                    "wait_for_research",
                    {"id": out(started)["id"], "timeout_seconds": 2},
                    progress_callback=on_progress,
                )
                return client.session.protocol_version, out(started), out(waited)

    version, started, waited = run_async(main)
    assert version == "2026-07-28"
    assert started["poll_after_seconds"] and waited["id"] == started["id"]
    assert waited["changed"] is False and progress and progress[0] == 0


# -- refusals ------------------------------------------------------------------------------------


def test_a_call_needs_a_working_token(live, owner):
    refused = initialize(live, {})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json()["type"].endswith("#problem-unauthorized")
    assert initialize(live, {"Authorization": "Bearer sw_notatoken"}).status_code == 401

    token = make_token(owner, Scope.READ)
    in_url = httpx.post(f"{live.url}?token={token}", json={}, timeout=30)
    assert in_url.status_code == 400 and "token-in-url" in in_url.json()["type"]

    # The SDK's client is refused too (it raises on the error response).
    assert "MCPError" in refusal(lambda: call(live.url, None, "list_recent"))

    # A revoked token stops at once; so do a deactivated member's.
    assert initialize(live, {"Authorization": f"Bearer {token}"}).status_code == 200
    user = make_member("tomas", None)
    theirs = make_token(user, Scope.READ)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert initialize(live, {"Authorization": f"Bearer {theirs}"}).status_code == 401
    tokens.revoke(owner.api_tokens.get(), by=owner)
    assert initialize(live, {"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_read_only_token_reads_but_cannot_start_or_cancel(live, sim_server, simulator, owner):
    reader = make_token(owner, Scope.READ)

    async def body(session: ClientSession) -> tuple[CallToolResult, ...]:
        start = await session.call_tool(
            "start_research", {"question": QUESTION, "idempotency_key": "k-1"}
        )
        cancel = await session.call_tool("cancel_research", {"id": "nothing"})
        recent = await session.call_tool("list_recent", {"limit": 5})
        return start, cancel, recent

    start, cancel, recent = with_session(live.url, reader, body)
    assert "read scope" in error_text(start)
    assert "read scope" in error_text(cancel)
    assert out(recent)["count"] == 0
    assert simulator.calls.count(endpoint="start") == 0
    assert not TrackedRequest.objects.exists()


def test_a_host_not_in_allowed_hosts_is_refused(live, owner):
    token = make_token(owner, Scope.READ)
    good = {"Authorization": f"Bearer {token}"}
    assert initialize(live, good).status_code == 200
    assert initialize(live, {**good, "Host": f"localhost:{live.port}"}).status_code == 200
    for host in ("evil.example", f"evil.example:{live.port}", "127.0.0.1.evil.example"):
        refused = initialize(live, {**good, "Host": host})
        assert refused.status_code == 421, host
    # A browser page elsewhere (DNS rebinding) is refused by its Origin.
    refused = initialize(live, {**good, "Origin": "https://evil.example"})
    assert refused.status_code == 403
    allowed = initialize(live, {**good, "Origin": f"http://127.0.0.1:{live.port}"})
    assert allowed.status_code == 200
    # The SDK's own client, through a host that is not allowed.
    assert "MCPError" in refusal(
        lambda: with_session(live.url, token, lambda s: s.list_tools(), host="evil.example")
    )


# -- the other tools -----------------------------------------------------------------------------


def test_wait_never_goes_past_its_limit(live, sim_server, simulator, owner, monkeypatch):
    """A run that does not move: wait_for_research returns at its timeout with the status,
    and a timeout over the limit counts as the limit (50 s; 2 s here, to keep the test short)."""
    simulator.run_seconds = 3600
    token = make_token(owner)
    started = out(call(live.url, token, "start_research", question=QUESTION, idempotency_key="w-1"))
    monkeypatch.setattr(mcp_server, "MAX_WAIT_SECONDS", 2.0)

    began = time.monotonic()
    waited = out(call(live.url, token, "wait_for_research", id=started["id"], timeout_seconds=500))
    elapsed = time.monotonic() - began
    assert waited["changed"] is False and waited["finished"] is False
    assert 1.9 <= waited["waited_seconds"] <= 2.6 and elapsed < 10
    assert waited["poll_after_seconds"] and "wait_for_research" in waited["next"]

    missing = call(live.url, token, "wait_for_research", id="no-such-request")
    assert "no request" in error_text(missing)


def test_cancel_research(live, sim_server, simulator, owner):
    simulator.run_seconds = 3600
    token = make_token(owner)
    started = out(call(live.url, token, "start_research", question=QUESTION, idempotency_key="c-1"))
    wait_for(
        lambda: TrackedRequest.objects.get(slug=started["id"]).request_id.startswith("resp_"),
        "the run's id",
    )
    cancelled = out(call(live.url, token, "cancel_research", id=started["id"]))
    assert cancelled["cancelling"] is True and cancelled["id"] == started["id"]
    assert simulator.calls.count(endpoint="cancel") == 1
    # Asking again sends nothing more.
    assert out(call(live.url, token, "cancel_research", id=started["id"]))["cancelling"]
    assert simulator.calls.count(endpoint="cancel") == 1


def test_search_list_and_unanswered_reads(live, owner):
    answered = archived_request(
        owner, request_id="job-peat", question="What does peatland rewetting do?"
    )
    AnswerArchive.objects.filter(pk=answered.pk).update(
        markdown="# Peat bogs\n\nRewetting stores carbon.\n\n## Costs\n\nIt costs little.\n"
    )
    running = TrackedRequest.objects.create(
        request_id="job-running", added_by=owner, question="Still running", status="IN_PROGRESS"
    )
    token = make_token(owner, Scope.READ)

    found = out(call(live.url, token, "search_archive", query="rewetting"))
    assert found["count"] == 1
    item = found["items"][0]
    assert item["has_answer"] and item["status"] == "COMPLETED"
    assert any("rewetting" in m["text"].lower() for m in item["matches"])
    assert "<mark>" not in json.dumps(found)

    recent = out(call(live.url, token, "list_recent", limit=10))
    assert [i["id"] for i in recent["items"]] == [running.slug, item["id"]]

    not_yet = call(live.url, token, "read_answer", id=running.slug)
    assert "no answer" in error_text(not_yet) or "still running" in error_text(not_yet)
    both = call(live.url, token, "read_answer", id=item["id"], section=1, page=1)
    assert "not both" in error_text(both)
    beyond = call(live.url, token, "read_answer", id=item["id"], section=99)
    assert "sections (1 to" in error_text(beyond)


# -- behind the proxy examples -------------------------------------------------------------------


def proxy_for_mcp(kind: str, conf_dir: Path, mcp_port: int) -> tuple[list[str], int]:
    """deploy/nginx.conf or deploy/Caddyfile, as written but on loopback ports with a
    throwaway certificate (as tests/test_deploy_proxies.py runs them), /mcp passed to the test's
    MCP port; checked with the proxy's own tool. The command and the https port."""
    http_port, https_port, web_port = free_port(), free_port(), free_port()
    if kind == "nginx":
        cert, key = certificate(conf_dir)
        live_certs = f"/etc/letsencrypt/live/{HOST}"
        site = rewritten(
            "nginx.conf",
            [
                ("listen 80;", f"listen 127.0.0.1:{http_port};"),
                ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
                (f"{live_certs}/fullchain.pem", str(cert)),
                (f"{live_certs}/privkey.pem", str(key)),
                ("proxy_pass http://127.0.0.1:8000;", f"proxy_pass http://127.0.0.1:{web_port};"),
                ("proxy_pass http://127.0.0.1:8001;", f"proxy_pass http://127.0.0.1:{mcp_port};"),
            ],
        )
        site_path = conf_dir / "sonarweb.conf"
        site_path.write_text(site)
        main = conf_dir / "nginx.conf"
        main.write_text(main_conf(conf_dir, site_path))
        nginx = binary("nginx")
        check = [nginx, "-t", "-c", str(main), "-p", str(conf_dir)]
        run = [nginx, "-c", str(main), "-p", str(conf_dir)]
    else:
        options = (
            f"{{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tdefault_sni {HOST}\n"
            f"\thttp_port {http_port}\n\thttps_port {https_port}\n"
            f"\tstorage file_system {conf_dir / 'data'}\n}}\n\n"
        )
        site = rewritten(
            "Caddyfile",
            [
                (f"{HOST} {{", f"{HOST} {{\n\tbind 127.0.0.1"),
                ("reverse_proxy 127.0.0.1:8000", f"reverse_proxy 127.0.0.1:{web_port}"),
                ("reverse_proxy /mcp 127.0.0.1:8001", f"reverse_proxy /mcp 127.0.0.1:{mcp_port}"),
            ],
        )
        path = conf_dir / "Caddyfile"
        path.write_text(options + site)
        caddy = binary("caddy")
        check = [caddy, "validate", "--config", str(path), "--adapter", "caddyfile"]
        run = [caddy, "run", "--config", str(path), "--adapter", "caddyfile"]
    env = {"PATH": os.environ["PATH"], "HOME": str(conf_dir), "XDG_DATA_HOME": str(conf_dir)}
    checked = subprocess.run(
        check, capture_output=True, text=True, timeout=60, env=env, cwd=conf_dir
    )
    assert checked.returncode == 0, checked.stderr
    return run, https_port


@pytest.fixture
def proxied_host(settings) -> None:
    """The proxy examples' host name is one the app answers to (set before ``live`` starts)."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, HOST]


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_answers_stream_through_the_proxy_examples(kind, proxied_host, live, owner, tmp_path):
    """Through each proxy example, a tool call's progress arrives while the call still runs:
    nothing on /mcp is buffered or compressed."""
    TrackedRequest.objects.create(
        request_id=f"resp_{uuid.uuid4()}",
        added_by=owner,
        question="A run that does not move",
        status="IN_PROGRESS",
        next_poll_at=timezone.now() + timedelta(hours=1),
    )
    slug = TrackedRequest.objects.get().slug
    token = make_token(owner, Scope.READ)
    command, https_port = proxy_for_mcp(kind, tmp_path, live.port)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    proxy = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    url = f"https://127.0.0.1:{https_port}/mcp"
    arrivals: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        arrivals.append(time.monotonic())

    async def main() -> tuple[float, float, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}", "Host": HOST}
        async with httpx2.AsyncClient(headers=headers, timeout=30, verify=False) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    began = time.monotonic()
                    result = await session.call_tool(
                        "wait_for_research",
                        {"id": slug, "timeout_seconds": 3},
                        progress_callback=on_progress,
                    )
                    return began, time.monotonic(), out(result)

    def answering() -> bool:
        if proxy.poll() is not None:
            return True
        try:
            return initialize_at(url, {"Host": HOST}).status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_until(answering, kind)
        assert proxy.poll() is None, proxy.stderr.read().decode()
        began, ended, waited = run_async(main)
    finally:
        proxy.terminate()
        proxy.communicate(timeout=30)
    assert waited["changed"] is False and waited["waited_seconds"] >= 2.9
    assert arrivals, "no progress came through"
    # The first notification was sent at once: it arrived long before the result did.
    assert arrivals[0] - began < 1.5 and ended - arrivals[0] > 1.5


# -- served by gunicorn, as the image runs it ----------------------------------------------------


def test_plain_gunicorn_serves_mcp_on_its_own_port(container):  # noqa: F811
    """The web role (gunicorn.conf.py) starts the MCP server on MCP_PORT beside the site, and
    stops it when gunicorn stops."""
    mcp_port = free_port()
    env = {**container, "MCP_PORT": str(mcp_port), "SONARWEB_TOKEN_SECRET": TOKEN_SECRET}
    assert run_role(env, "migrate").returncode == 0
    made = run_role(
        env,
        "manage",
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from sonarweb.api import tokens; "
        "u = User.objects.create_user('agent'); "
        "print(tokens.create_token(u, name='t', scope='read', expires_at=None)[1])",
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    web = subprocess.Popen(
        entrypoint(), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    host = container["DJANGO_ALLOWED_HOSTS"]
    url = f"http://127.0.0.1:{mcp_port}/mcp"

    def answering() -> bool:
        if web.poll() is not None:
            return True
        try:
            return httpx.post(url, json={}, headers={"Host": host}, timeout=5).status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_until(lambda: healthcheck(env) == 0 or web.poll() is not None, "healthy web")
        wait_until(answering, "the MCP server")
        assert web.poll() is None, "gunicorn exited"

        async def body(session: ClientSession) -> set[str]:
            return {tool.name for tool in (await session.list_tools()).tools}

        assert with_session(url, token, body, host=host) == TOOLS
        # The same port is the whole site too: the permalinks the tools return work there.
        site = httpx.get(f"http://127.0.0.1:{mcp_port}/healthz", headers={"Host": host})
        assert site.status_code == 200
    finally:
        code, out_bytes, err_bytes = stop(web)
    logs = out_bytes.decode() + err_bytes.decode()
    assert code == 0, logs
    assert "Uvicorn running" in logs or "Application startup complete" in logs, logs
    # Stopped with gunicorn: nothing listens on the MCP port any more.
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json={}, headers={"Host": host}, timeout=5)
    assert os.environ.get("MCP_PORT") != str(mcp_port)
