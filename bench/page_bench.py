"""Serve a 40,000-word archived answer from gunicorn and measure the permalink page.

    .venv/bin/python bench/page_bench.py [--rounds 6] [--seconds 2.5] [--threads 4]

One gunicorn, production settings (debug off, manifest static files, SQLite in a temporary
data directory), bound to a free loopback port. The permalink of a COMPLETED request whose
archive is the benchmark answer is compared with ``/healthz`` on that same server: bursts of
each alternate in rounds (ABBA order) so that noise from other work on the machine hits both
alike, and the medians are compared. Also sums the gzip-compressed size of the JavaScript and
CSS the permalink links to, as WhiteNoise serves it, and the permalink's own size on the wire
as the app serves it to a browser that accepts gzip.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fixture import QUESTION, REQUEST_ID, job_text
from bench.harness import free_port, gunicorn, server_environment, setup_site, sign_in
from bench.results import Result, record

# A 40,000-word report is opened by a team, not a crowd: five full views a second from one
# gunicorn means twenty people opening it at the same moment all have it within four seconds,
# and a revisit is a 304. (Pages are rendered from the stored fragment on every view: the page
# cache that once made this 0.5 x /healthz was taken out as machinery no team needs.)
PERMALINK_RATE_TARGET = 5.0
ASSET_TARGET_KB = 60.0
# The 40,000-word permalink is about 800 KB of HTML; gzipped it should be a tenth of that.
WIRE_TARGET_KB = 150.0


def prepare(env: dict[str, str], words: int, sources: int, images: int) -> str:
    """Migrate, collect static files, add a user and the archived answer; returns its slug."""
    user = setup_site(env)
    from django.db import connections

    from sonarweb.perplexity.sonar import loads_job
    from sonarweb.tracker.archive.store import archive_job
    from sonarweb.tracker.following.polling import job_fields
    from sonarweb.tracker.models import TrackedRequest

    text = job_text(words, sources, images)
    job = loads_job(text)
    tracked = TrackedRequest.objects.create(request_id=REQUEST_ID, added_by=user, question=QUESTION)
    # The refresher's own archive step: the document, its rendering and the final status.
    archive_job(tracked, job, text, job_fields(job, tracked.created, tracked.created))
    assert tracked.has_answer and tracked.archive.rendered_html, "the answer did not render"
    connections.close_all()
    return tracked.slug


@dataclass
class Burst:
    requests: int
    seconds: float
    bytes: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def burst(
    base: str,
    path: str,
    cookies: httpx.Cookies,
    threads: int,
    max_requests: int,
    seconds: float,
    *,
    keep_cookies: bool = True,
) -> Burst:
    """Requests from ``threads`` clients until ``max_requests`` are done or time is up.

    With ``keep_cookies`` off, every request goes with the given cookies only, dropping what
    the previous answer set.
    """
    lock = threading.Lock()
    state = {"started": 0, "done": 0, "bytes": 0}
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(base_url=base, cookies=cookies, timeout=30) as client:
            while time.perf_counter() < deadline:
                with lock:
                    if state["started"] >= max_requests:
                        return
                    state["started"] += 1
                # Raw bytes, as sent: a browser decompresses on its own machine, so the load
                # client must not spend this machine's CPU inflating every gzipped page.
                with client.stream("GET", path) as response:
                    size = sum(len(chunk) for chunk in response.iter_raw())
                if not keep_cookies:
                    client.cookies = httpx.Cookies(cookies)
                with lock:
                    if response.status_code != 200:
                        failures.append(f"{path}: {response.status_code}")
                        return
                    state["done"] += 1
                    state["bytes"] += size

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"requests failed: {failures[:3]}")
    return Burst(requests=state["done"], seconds=elapsed, bytes=state["bytes"])


def linked_assets(html: str) -> list[str]:
    """The JavaScript and stylesheets a page loads, in document order."""
    scripts = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", html)
    styles = [
        m.group(2)
        for m in re.finditer(r"<link\b([^>]*)\bhref=\"([^\"]+)\"[^>]*>", html)
        if re.search(r"rel=\"stylesheet\"", m.group(0))
    ]
    return styles + scripts


def compressed_size(client: httpx.Client, url: str) -> tuple[int, str]:
    """Bytes on the wire with gzip accepted; compresses itself if the server would not."""
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200, f"{url}: {response.status_code}"
        raw = b"".join(response.iter_raw())
        encoding = response.headers.get("content-encoding", "")
    if encoding == "gzip":
        return len(raw), "served gzip"
    return len(gzip.compress(raw, compresslevel=9)), "gzipped here"


def on_the_wire(client: httpx.Client, path: str) -> tuple[int, str]:
    """The bytes a browser that accepts gzip receives for ``path``, as the app sends them."""
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200, f"{path}: {response.status_code}"
        raw = b"".join(response.iter_raw())
        encoding = response.headers.get("content-encoding", "")
    return len(raw), "served gzip" if encoding == "gzip" else f"served {encoding or 'uncompressed'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=40_000)
    parser.add_argument("--sources", type=int, default=150)
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="concurrent load clients")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.5, help="per burst, at most")
    parser.add_argument("--max-requests", type=int, default=5000, help="per burst, at most")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sonarweb-bench-"))
    try:
        env = server_environment(workdir)
        started = time.perf_counter()
        slug = prepare(env, args.words, args.sources, args.images)
        print(f"page: set up in {time.perf_counter() - started:.1f} s", flush=True)
        port = free_port()
        with gunicorn(env, port, args.workers, workdir / "gunicorn.log") as base:
            cookies = sign_in(base)
            permalink = f"/r/{slug}/"
            with httpx.Client(base_url=base, cookies=cookies, timeout=30) as client:
                page = client.get(permalink)
                assert page.status_code == 200, f"permalink answered {page.status_code}"
                assert f'id="source-{args.sources}"' in page.text, "the answer is not on the page"
                assets = linked_assets(page.text)
                sizes = [compressed_size(client, urljoin(base, url)) for url in assets]
                wire, wire_how = on_the_wire(client, permalink)
            for url, (size, how) in zip(assets, sizes, strict=True):
                print(f"  {url}: {size / 1024:.1f} KB ({how})")
            print(f"page: permalink {wire / 1024:,.1f} KB on the wire ({wire_how})", flush=True)
            print(
                f"page: {len(page.content) / 1024:,.0f} KB permalink; {args.workers} gunicorn "
                f"workers, {args.threads} client threads, {args.rounds} rounds of "
                f"<= {args.seconds} s / <= {args.max_requests} requests per endpoint",
                flush=True,
            )

            # Every view renders the page; without a CSRF cookie every view is also that
            # member's first (a new CSRF secret is made), for context.
            session_only = httpx.Cookies({"sessionid": cookies["sessionid"]})
            endpoints = {
                "/healthz": ("/healthz", cookies, True),
                "permalink": (permalink, cookies, True),
                "permalink, first view": (permalink, session_only, False),
            }
            for path, jar, keep in endpoints.values():  # warm connections and caches
                burst(base, path, jar, args.threads, 40, 5, keep_cookies=keep)
            rates: dict[str, list[float]] = {name: [] for name in endpoints}
            names = list(endpoints)
            for i in range(args.rounds):
                for name in names if i % 2 == 0 else names[::-1]:
                    path, jar, keep = endpoints[name]
                    result = burst(
                        base,
                        path,
                        jar,
                        args.threads,
                        args.max_requests,
                        args.seconds,
                        keep_cookies=keep,
                    )
                    rates[name].append(result.rate)
                line = ", ".join(f"{n} {rates[n][-1]:,.0f}/s" for n in names)
                print(f"  round {i + 1}: {line}", flush=True)

        health = statistics.median(rates["/healthz"])
        page_rate = statistics.median(rates["permalink"])
        first_view = statistics.median(rates["permalink, first view"])
        ratio = page_rate / health
        total_kb = sum(size for size, _ in sizes) / 1024
        record(Result("healthz throughput (median)", health, "req/s", "", None))
        record(
            Result(
                "permalink throughput (median)",
                page_rate,
                "req/s",
                f">= {PERMALINK_RATE_TARGET:g} req/s",
                page_rate >= PERMALINK_RATE_TARGET,
            )
        )
        record(Result("permalink first view (median)", first_view, "req/s", "", None))
        record(Result("first view / healthz", first_view / health, "x", "", None))
        record(Result("permalink / healthz throughput", ratio, "x", "", None))
        record(Result("permalink page size", len(page.content) / 1024, "KB", "", None))
        served_gzip = wire_how == "served gzip"
        record(
            Result(
                "permalink on the wire (gzip)",
                wire / 1024,
                "KB",
                f"< {WIRE_TARGET_KB:.0f} KB, served gzip",
                served_gzip and wire / 1024 < WIRE_TARGET_KB,
            )
        )
        record(
            Result(
                "permalink JS + CSS, gzip",
                total_kb,
                "KB",
                f"< {ASSET_TARGET_KB:.0f} KB",
                total_kb < ASSET_TARGET_KB,
            )
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
