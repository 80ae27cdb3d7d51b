"""Archiving an answer's images: how long 30 take, and what they cost on disk.

    .venv/bin/python bench/image_archive.py [--images 30]

The simulator runs as its own process and serves its charts as PNG on loopback; the answer
names 30 of them. Measured in this process, as the refresher does it: fetch every image
under the safety rules, re-encode it at two sizes, store both, then render the answer again
with its local copies. Reported beside the source images' total size: what the archive
stores for the answer (full-size and thumbnail renditions).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, server_environment, setup_site
from bench.poll_load import start_simulator
from bench.results import Result, record

KEY = "pplx-bench-load-0000000000000000"
KB = 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sonarweb-images-"))
    try:
        env = server_environment(tmp)
        port = free_port()
        env["PERPLEXITY_API_BASE"] = f"http://127.0.0.1:{port}"
        # The simulator's images are on loopback, which production refuses to fetch.
        env["SONARWEB_IMAGES_ALLOW_PRIVATE"] = "1"
        sim = start_simulator(env, port, tmp / "simulator.log")
        try:
            user = setup_site(env)
            from sonarweb.media.background import archive_due_images
            from sonarweb.media.lookup import disk_usage
            from sonarweb.tracker.archive.store import rerender_many
            from sonarweb.tracker.following.polling import refresh_if_due
            from sonarweb.tracker.models import ApiKey, TrackedRequest

            key = ApiKey(user=user)
            key.set_secret(KEY)
            key.save()
            job = httpx.post(
                f"{env['PERPLEXITY_API_BASE']}/_sim/jobs",
                json={"key": KEY, "images": args.images, "queue_seconds": 0, "run_seconds": 0},
                timeout=10,
            ).json()["id"]
            tracked = TrackedRequest.objects.create(request_id=job, added_by=user)
            refresh_if_due(tracked)
            started = time.perf_counter()
            changed = archive_due_images(limit=1, budget_seconds=600)
            rerender_many(changed)
            elapsed = time.perf_counter() - started
            usage = disk_usage()
        finally:
            sim.terminate()
            sim.wait(timeout=30)
        record(Result(f"archive {usage.images} images from the simulator", elapsed, "s", "",
                      None))  # fmt: skip
        record(Result("source images fetched, one answer", usage.source_bytes / KB, "KB", "",
                      None))  # fmt: skip
        record(Result("stored for it (full size + thumbnails)", usage.stored_bytes / KB, "KB",
                      "", None))  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
