"""A hostile upstream against the production processes: does the site stay up and small?

    .venv/bin/python bench/upstream_faults.py [--seconds 20] [--viewers 10]

gunicorn serves the app and a refresher process polls the simulator (both with production
settings, SQLite in a temporary directory). Three phases run one after another in the same
run, each for ``--seconds``: a healthy upstream, an upstream that drips every answer one
byte a second, and one that answers every call with a 400 MB body. In each, ten viewers
poll their job's badge once a second and a prober times ``/healthz``; the resident memory
of the gunicorn workers and of the refresher is sampled throughout. Reported: /healthz p95
and the largest RSS of each process kind, per phase, the fault phases beside the healthy one.

Then, in this process, the time to archive (parse, render both ways, store) an answer with
100,000 search results.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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
from bench.poll_load import start_simulator
from bench.results import Result, record

KEY = "pplx-bench-load-0000000000000000"
HEALTHZ_P95_TARGET_MS = 1000.0
RSS_GROWTH_TARGET_MB = 100.0
MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def gunicorn_master(port: int) -> int:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "gunicorn" in line and f"127.0.0.1:{port}" in line:
            return int(line.split()[0])
    raise SystemExit("gunicorn's master process was not found")


def prepare(env: dict[str, str], jobs: int) -> list[str]:
    user = setup_site(env)
    from django.db import connections

    from sonarweb.tracker.models import ApiKey, TrackedRequest

    key = ApiKey(user=user)
    key.set_secret(KEY)
    key.save()
    sim = env["PERPLEXITY_API_BASE"]
    slugs = []
    for _ in range(jobs):
        job = httpx.post(f"{sim}/_sim/jobs", json={"key": KEY}, timeout=10).json()["id"]
        slugs.append(TrackedRequest.objects.create(request_id=job, added_by=user).slug)
    connections.close_all()
    return slugs


def reset_rows() -> None:
    """Every row due again with a clean slate, so each phase starts alike."""
    from django.db import connections
    from django.utils import timezone

    from sonarweb.tracker.models import TrackedRequest

    TrackedRequest.objects.update(
        next_poll_at=timezone.now(), poll_failures=0, state="PENDING", note="", claimed_by=""
    )
    connections.close_all()


def fault(sim: str, body: dict | None) -> None:
    if body is None:
        httpx.delete(f"{sim}/_sim/faults", headers={"Content-Type": "application/json"})
    else:
        httpx.post(f"{sim}/_sim/faults", json=body, timeout=10).raise_for_status()


def phase(
    base: str, cookies: httpx.Cookies, slugs: list[str], seconds: float, pids: dict[str, list[int]]
) -> dict[str, float]:
    stop = threading.Event()
    healthz: list[float] = []
    errors: list[str] = []
    peaks = {kind: 0.0 for kind in pids}

    def viewer(slug: str) -> None:
        with httpx.Client(base_url=base, cookies=cookies, timeout=60) as http:
            while not stop.is_set():
                response = http.get(f"/r/{slug}/status/", headers={"HX-Request": "true"})
                if response.status_code != 200:
                    errors.append(str(response.status_code))
                stop.wait(1.0)

    def prober() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            while not stop.is_set():
                started = time.perf_counter()
                response = http.get("/healthz")
                healthz.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors.append(f"healthz {response.status_code}")
                stop.wait(0.1)

    def sampler() -> None:
        while not stop.is_set():
            for kind, group in pids.items():
                peaks[kind] = max(peaks[kind], max((rss_mb(p) for p in group), default=0.0))
            stop.wait(0.25)

    threads = [threading.Thread(target=viewer, args=(s,)) for s in slugs]
    threads += [threading.Thread(target=prober), threading.Thread(target=sampler)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        print(f"    {len(errors)} failed requests, e.g. {errors[:3]}")
    return {
        "healthz_p95": statistics.quantiles(healthz, n=20)[18] if len(healthz) > 20 else 0.0,
        "errors": float(len(errors)),
        **{f"rss_{kind}": peak for kind, peak in peaks.items()},
    }


def archive_time_100k() -> float:
    """Seconds to archive an answer with 100,000 search results (in this process)."""
    from sonarweb.perplexity.sonar import loads_job
    from sonarweb.simulator.corpus import generate_completion
    from sonarweb.tracker.archive.store import archive_job
    from sonarweb.tracker.following.polling import job_fields
    from sonarweb.tracker.models import TrackedRequest

    completion = generate_completion("q", words=4000, sources=60, images=10, seed="big")
    completion["search_results"] += [
        {
            "title": f"Result {i} on grid storage",
            "url": f"https://site{i % 997}.example.org/page/{i}",
            "date": "2025-01-01",
            "snippet": "A short snippet about storage markets and prices.",
        }
        for i in range(100_000)
    ]
    text = json.dumps({"id": "big-100k", "status": "COMPLETED", "response": completion})
    tracked = TrackedRequest.objects.create(request_id="big-100k")
    started = time.perf_counter()
    job = loads_job(text)
    archive_job(tracked, job, text, job_fields(job, tracked.created, tracked.created))
    elapsed = time.perf_counter() - started
    print(f"    100k-source answer: {len(text) / MB:.1f} MB of JSON")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--viewers", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sonarweb-faults-"))
    try:
        env = server_environment(tmp)
        sim_port, web_port = free_port(), free_port()
        env["PERPLEXITY_API_BASE"] = f"http://127.0.0.1:{sim_port}"
        env["PERPLEXITY_TOTAL_TIMEOUT"] = "10"
        sim = start_simulator(env, sim_port, tmp / "simulator.log")
        try:
            slugs = prepare(env, args.viewers)
            cookies = None
            with (
                gunicorn(env, web_port, 2, tmp / "gunicorn.log") as base,
                refresher(env, tmp / "refresher.log") as loop,
            ):
                cookies = sign_in(base)
                master = gunicorn_master(web_port)
                pids = {"web": children(master) or [master], "refresher": [loop.pid]}
                sim_base = env["PERPLEXITY_API_BASE"]
                results = {}
                hostile_body = {"kind": "oversize", "times": None, "size": 400 * MB}
                phases = (
                    ("healthy", None),
                    ("drip", {"kind": "drip", "times": None, "delay": 1.0}),
                    ("400 MB body", {**hostile_body, "declare_length": False}),
                )
                for name, body in phases:
                    fault(sim_base, None)
                    if body:
                        fault(sim_base, body)
                    reset_rows()
                    print(f"  phase: {name} upstream ({args.seconds:g} s)", flush=True)
                    results[name] = phase(base, cookies, slugs, args.seconds, pids)
                fault(sim_base, None)
            healthy = results["healthy"]
            for name in ("healthy", "drip", "400 MB body"):
                r = results[name]
                target = "" if name == "healthy" else f"< {HEALTHZ_P95_TARGET_MS:g} ms"
                passed = None if name == "healthy" else r["healthz_p95"] < HEALTHZ_P95_TARGET_MS
                record(Result(f"/healthz p95, {name} upstream", r["healthz_p95"], "ms", target,
                              passed))  # fmt: skip
                for kind in ("web", "refresher"):
                    growth = r[f"rss_{kind}"] - healthy[f"rss_{kind}"]
                    if name == "healthy":
                        record(Result(f"{kind} RSS, healthy upstream", r[f"rss_{kind}"], "MB",
                                      "", None))  # fmt: skip
                    else:
                        record(Result(f"{kind} RSS growth, {name} upstream", growth, "MB",
                                      f"< {RSS_GROWTH_TARGET_MB:g} MB",
                                      growth < RSS_GROWTH_TARGET_MB))  # fmt: skip
            seconds = archive_time_100k()
            record(Result("archive an answer with 100,000 sources", seconds, "s", "", None))
        finally:
            sim.terminate()
            sim.wait(timeout=30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
