"""Many viewers watching in-progress jobs: polls served, badge latency, upstream calls.

    .venv/bin/python bench/poll_load.py [--viewers 50] [--jobs 10] [--seconds 60]

The simulator runs as its own process with jobs that stay IN_PROGRESS; gunicorn serves
the app and a refresher process polls upstream, both with production settings. Each viewer
is a browser tab polling its job's badge partial (`/r/<slug>/status/` with `HX-Request`)
once a second, three times as often as the real badge does. Viewers never call upstream
themselves; however many there are, the refresher makes at most one list call for the key
per poll interval, which covers every job.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (
    free_port,
    gunicorn,
    refresher,
    server_environment,
    setup_site,
    sign_in,
)
from bench.results import Result, record

KEY = "pplx-bench-load-0000000000000000"
POLL_INTERVAL = 3.0  # sonarweb.tracker.following.scheduler.FAST_SECONDS for young jobs
P95_TARGET_MS = 50.0
STATUS = re.compile(r'data-status="(\w+)"')
HEALTHY = {"PENDING", "CREATED", "IN_PROGRESS"}


def start_simulator(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "manage.py", "simulate", "--port", str(port), "--key", KEY]
    command += ["--queue-seconds", "0", "--run-seconds", "7200"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/_sim/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the simulator did not start:\n{log.read_text()}")


def prepare(env: dict[str, str], sim_base: str, jobs: int) -> dict[str, str]:
    """Migrate, collect static files, add a user with the key and the jobs; slug -> job id."""
    user = setup_site(env)
    from django.db import connections

    from sonarweb.tracker.models import ApiKey, TrackedRequest

    key = ApiKey(user=user)
    key.set_secret(KEY)
    key.save()
    slugs: dict[str, str] = {}
    for n in range(jobs):
        # Agent runs, as research runs today: each is polled with its own GET.
        response = httpx.post(
            f"{sim_base}/_sim/runs",
            json={"key": KEY, "question": f"Load test question {n}", "run_seconds": 3600},
        )
        job_id = response.json()["id"]
        tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user)
        slugs[tracked.slug] = job_id
    connections.close_all()
    return slugs


async def viewer(
    client: httpx.AsyncClient,
    slug: str,
    until: float,
    latencies: list[float],
    errors: Counter[str],
    offset: float,
) -> None:
    await asyncio.sleep(offset)
    path = f"/r/{slug}/status/"
    while time.monotonic() < until:
        tick = time.monotonic()
        try:
            response = await client.get(path, headers={"HX-Request": "true"})
            status = STATUS.search(response.text)
            if response.status_code != 200:
                errors[f"HTTP {response.status_code}"] += 1
            elif not status or status.group(1) not in HEALTHY:
                # PENDING is fine: another viewer's first call is still in flight.
                errors[f"badge {status.group(1) if status else 'missing'}"] += 1
            else:
                latencies.append((time.monotonic() - tick) * 1000)
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))


async def load(
    base: str, cookies: httpx.Cookies, slugs: list[str], viewers: int, seconds: float
) -> tuple[list[float], Counter[str]]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=viewers, max_keepalive_connections=viewers)
    async with httpx.AsyncClient(
        base_url=base, cookies=cookies, timeout=10, limits=limits
    ) as client:
        await asyncio.gather(
            *(
                viewer(client, slugs[i % len(slugs)], until, latencies, errors, i / viewers)
                for i in range(viewers)
            )
        )
    return latencies, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sonarweb-load-"))
    simulator = None
    try:
        sim_port = free_port()
        env = server_environment(workdir)
        env["PERPLEXITY_API_BASE"] = f"http://127.0.0.1:{sim_port}"
        simulator = start_simulator(env, sim_port, workdir / "simulator.log")
        slugs = prepare(env, env["PERPLEXITY_API_BASE"], args.jobs)
        port = free_port()
        with (
            gunicorn(env, port, args.workers, workdir / "gunicorn.log") as base,
            refresher(env, workdir / "refresher.log"),
        ):
            cookies = sign_in(base)
            httpx.post(f"{env['PERPLEXITY_API_BASE']}/_sim/reset_calls", json={})
            print(
                f"load: {args.viewers} viewers on {args.jobs} in-progress jobs for "
                f"{args.seconds:g} s, one poll per viewer per second, {args.workers} workers",
                flush=True,
            )
            started = time.monotonic()
            latencies, errors = asyncio.run(
                load(base, cookies, list(slugs), args.viewers, args.seconds)
            )
            elapsed = time.monotonic() - started
        calls = httpx.get(f"{env['PERPLEXITY_API_BASE']}/_sim/calls").json()
        rows = calls["calls"] if isinstance(calls, dict) else calls
        lists = sum(1 for c in rows if c.get("endpoint") == "list")
        per_job = Counter(c.get("job_id") for c in rows if c.get("endpoint") in ("get", "run"))
        # Each list call answers for every job of the key; a running job needs no GET.
        worst = lists + max((per_job.get(job_id, 0) for job_id in slugs.values()), default=0)
        allowed = int(elapsed / POLL_INTERVAL) + 1
        quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
        p50, p95 = statistics.median(latencies) if latencies else 0.0, quantiles[94]
        total_errors = sum(errors.values())
        if errors:
            print(f"  errors: {dict(errors)}")
        record(Result("viewer polls served", len(latencies), "polls", "", None))
        record(Result("badge partial p50", p50, "ms", "", None))
        record(Result("badge partial p95", p95, "ms", f"< {P95_TARGET_MS:.0f} ms", p95 < 50))
        record(Result("upstream list calls, the key", lists, "calls", "", None))
        record(
            Result(
                "upstream calls, busiest job",
                worst,
                "calls",
                f"<= {allowed} ({elapsed:.0f} s / {POLL_INTERVAL:g} s + 1)",
                worst <= allowed,
            )
        )
        record(Result("viewer errors", total_errors, "errors", "0", total_errors == 0))
    finally:
        if simulator is not None:
            simulator.terminate()
            simulator.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
