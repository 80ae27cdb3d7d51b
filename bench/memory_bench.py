"""Peak memory per worker on allowed but large inputs, each beside a small baseline.

    .venv/bin/python bench/memory_bench.py [--sources 1000000] [--megapixels 39.7]
        [--only archive|image|interactive]

Every case runs in its own process, so peaks do not mix: the process sets Django up, reads
its input, notes its resident memory, resets the kernel's peak-RSS mark (``VmHWM``, through
``/proc/self/clear_refs``) and runs one step; what it reports is the peak minus the memory it
had before the step. The cases:

- refresher archive: the refresher's poll of one finished request, as in production (GET over
  HTTP from the simulator, parse, render, store the document, the row's fields), for an
  Agent run and a Sonar job with ``--sources`` small sources, and for the same with 20;
- image decode: ``sonarweb.media.decode.reencode`` of a PNG and a JPEG of ``--megapixels``
  and of a PNG with alpha just under SONARWEB_IMAGE_MAX_DECODED_PIXELS (the costliest image
  still decoded), beside a 1 MP PNG;
- interactive call: a start of research (``create_run`` through ``interactive_client``, as the
  New research page makes it) answered by a 30 MB body sent without Content-Length, and by
  the simulator's normal answer.

Targets, over the baseline of the same step:

- refresher archive below 450 MB. A million small sources are about the most the 32 MiB
  response cap lets in. Parsed whole with ``json`` they would be a tree of dicts first
  (about 260 bytes a source: 260 MB) before one source is read; they are read one at a time
  instead (``payload.loads_streamed``), so what is held is the text, archived as received
  (30 MB, or 60 when one character is outside Latin-1), and the parsed sources (a slotted
  object and its URL, about 150 MB). Around them: the numbering of the sources for the page
  (a few arrays), which lists 200 uncited ones and builds only those, and the database's
  copies of the text once the parsed answer is gone.
- one image decode below 120 MB: 16 MP decoded are 64 MB; that one copy, a band being
  resampled and the renditions.
- an interactive call below 20 MB: it is refused after PERPLEXITY_INTERACTIVE_MAX_BYTES
  (4 MiB), with no copy of what it read.

The simulator runs in this process, on a thread (its control requests are too small to carry
a 30 MB document); each case's process talks to it over HTTP.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import Result, record
from sonarweb.simulator.app import Simulator
from sonarweb.simulator.server import serve

KEY = "pplx-bench-memory-000000000000000"
MB = 1024 * 1024
SMALL_SOURCES = 20
INTERACTIVE_BODY = 30 * 1000 * 1000
# Targets in MB over the baseline (see the module docstring for why).
TARGETS = {"archive": 450.0, "image": 120.0, "interactive": 20.0}


# Measuring, in the child --------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def measure(step: Any) -> dict[str, Any]:
    """Run ``step()``; its peak RSS growth in MB, and what it returned (a short sentence)."""
    gc.collect()
    before = _status_kb("VmRSS")
    reset = _reset_peak()
    started = time.perf_counter()
    outcome = step()
    elapsed = time.perf_counter() - started
    peak = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "growth_mb": max(peak - before, 0) / 1024,
        "seconds": elapsed,
        "outcome": str(outcome)[:200],
    }


def child_setup(env_file: str) -> None:
    env = json.loads(Path(env_file).read_text())
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()


def case_archive(request_id: str) -> Any:
    from sonarweb.tracker.following.polling import refresh_if_due
    from sonarweb.tracker.models import TrackedRequest

    tracked = TrackedRequest.objects.get(request_id=request_id)
    # Everything the step imports lazily, imported before the baseline is taken.
    import sonarweb.answers.export
    import sonarweb.answers.render  # noqa: F401

    def step() -> str:
        refresh_if_due(tracked)
        archive = getattr(tracked, "archive", None)
        size = archive.size if archive is not None else 0
        return f"{tracked.status} {tracked.state} archived {size} bytes {tracked.note}"

    return measure(step)


def case_image(path: str) -> Any:
    from django.conf import settings

    from sonarweb.media.decode import reencode
    from sonarweb.media.errors import ImageFailure

    data = Path(path).read_bytes()

    def step() -> str:
        try:
            decoded = reencode(data, max_pixels=settings.SONARWEB_IMAGE_MAX_PIXELS)
        except ImageFailure as exc:
            return f"refused: {exc}"
        return f"archived {decoded.full.width}x{decoded.full.height}"

    return measure(step)


def case_interactive(big: bool) -> Any:
    from django.conf import settings

    from sonarweb.perplexity import agent
    from sonarweb.perplexity import client as upstream
    from sonarweb.tracker.keys.upstream import interactive_client
    from sonarweb.tracker.models import ApiKey

    key = ApiKey.objects.get()
    body = agent.build_request("A question for the memory benchmark?", preset="fast")
    if big:
        faults = f"{settings.PERPLEXITY_API_BASE}/_sim/faults"
        fault = {"kind": "oversize", "endpoint": "start", "size": INTERACTIVE_BODY}
        httpx.post(faults, json=fault | {"declare_length": False}, timeout=10).raise_for_status()

    def step() -> str:
        try:
            with interactive_client(key) as api:
                job, _ = api.create_run(body)
        except upstream.UpstreamError as exc:
            return f"{type(exc).__name__}: {exc}"
        return f"started {job.status}"

    return measure(step)


def child(args: argparse.Namespace) -> None:
    child_setup(args.env)
    if args.case == "archive":
        out = case_archive(args.arg)
    elif args.case == "image":
        out = case_image(args.arg)
    else:
        out = case_interactive(args.arg == "big")
    print("RESULT " + json.dumps(out), flush=True)


# Preparing, in the parent -------------------------------------------------------------------


def many_sources(count: int) -> list[dict[str, str]]:
    """``count`` small sources (about 29 bytes each as the simulator sends them)."""
    return [{"url": f"https://a.io/{n:x}"} for n in range(count)]


def agent_run(simulator: Simulator, extra: int) -> str:
    from bench.fixture import agent_document

    run_id = f"resp_{uuid.uuid4()}"
    document = agent_document(words=2000, sources=SMALL_SOURCES)
    document["id"] = run_id
    results = next(item for item in document["output"] if item["type"] == "search_results")
    results["results"].extend(many_sources(extra))
    return simulator.add_run(KEY, run_id=run_id, document=document, queue_seconds=0, run_seconds=0)


def sonar_job(simulator: Simulator, extra: int) -> str:
    from bench.fixture import job_document

    completion = job_document(words=2000, sources=SMALL_SOURCES, images=0)["response"]
    completion["search_results"].extend(many_sources(extra))
    return simulator.add_job(KEY, completion=completion, queue_seconds=0, run_seconds=0)


def served_size(sim: str, path: str) -> int:
    with httpx.stream("GET", f"{sim}{path}", headers={"Authorization": f"Bearer {KEY}"}) as r:
        return sum(len(chunk) for chunk in r.iter_raw())


def write_images(folder: Path, megapixels: float, png_limit: int) -> dict[str, Path]:
    """The test images: smooth content, so the files stay under the byte limit as photos do.
    The largest PNG still decoded has an alpha channel: the costliest kind to resample."""
    from PIL import Image

    def gradient(pixels: float, alpha: bool = False) -> Image.Image:
        width = int((pixels * 4 / 3) ** 0.5)
        height = int(pixels / width)
        small = Image.linear_gradient("L").resize((256, 192))
        bands = [small, small.transpose(Image.Transpose.FLIP_LEFT_RIGHT), small]
        if alpha:
            bands.append(Image.radial_gradient("L").resize((256, 192)))
        image = Image.merge("RGBA" if alpha else "RGB", bands)
        return image.resize((width, height), Image.Resampling.BILINEAR)

    paths = {name: folder / name for name in ("big.png", "big.jpg", "limit.png", "1mp.png")}
    big = gradient(megapixels * 1_000_000)
    big.save(paths["big.png"], compress_level=9)
    big.save(paths["big.jpg"], quality=85)
    del big
    gradient(png_limit * 0.99, alpha=True).save(paths["limit.png"], compress_level=9)
    gradient(1_000_000).save(paths["1mp.png"])
    return paths


def run_child(env_file: Path, case: str, arg: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", case, "--arg", arg, "--env", str(env_file)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise SystemExit(f"case {case} {arg} failed:\n{done.stdout}\n{done.stderr}")


def report(name: str, kind: str, big: dict[str, Any], small: dict[str, Any]) -> None:
    """Two rows: the peak of the small input (context), and how far the large one's peak
    goes beyond it (a refused input may stay under it: that counts as nothing)."""
    over = max(big["growth_mb"] - small["growth_mb"], 0.0)
    target = TARGETS[kind]
    print(f"    {name}: {big['outcome']} ({big['seconds']:.1f} s)", flush=True)
    record(Result(f"{name}: baseline (small input)", small["growth_mb"], "MB", "", None))
    record(Result(f"{name}: peak over baseline", over, "MB", f"< {target:g}", over < target))


def parent(args: argparse.Namespace) -> None:
    from bench.harness import free_port, server_environment, setup_site

    tmp = Path(tempfile.mkdtemp(prefix="sonarweb-memory-"))
    try:
        env = server_environment(tmp)
        port = free_port()
        sim = f"http://127.0.0.1:{port}"
        env["PERPLEXITY_API_BASE"] = sim
        env_file = tmp / "env.json"
        env_file.write_text(json.dumps(env))
        # In this process (the cases run in their own): control requests are too small to
        # carry a 30 MB document.
        simulator = Simulator(keys=[KEY], queue_seconds=0, run_seconds=0, sonar_retired=False)
        server = serve(simulator, port=port)
        try:
            user = setup_site(env)
            from django.conf import settings
            from django.utils import timezone

            from sonarweb.tracker.models import ApiKey, TrackedRequest

            key = ApiKey(user=user)
            key.set_secret(KEY)
            key.save()
            ids = {
                "agent": agent_run(simulator, args.sources),
                "agent_small": agent_run(simulator, 0),
                "sonar": sonar_job(simulator, args.sources),
                "sonar_small": sonar_job(simulator, 0),
            }
            for request_id in ids.values():
                TrackedRequest.objects.create(
                    request_id=request_id, added_by=user, next_poll_at=timezone.now()
                )
            size = served_size(sim, f"/v1/agent/{ids['agent']}")
            sonar_size = served_size(sim, f"/v1/async/sonar/{ids['sonar']}")
            print(f"  answers of {args.sources:,} sources: Agent {size / MB:.1f} MB, "
                  f"Sonar {sonar_size / MB:.1f} MB", flush=True)  # fmt: skip
            if args.only in ("", "archive"):
                archive_cases(env_file, ids, args.sources)
            if args.only in ("", "image"):
                limit = int(settings.SONARWEB_IMAGE_MAX_DECODED_PIXELS)
                image_cases(env_file, tmp, args.megapixels, limit)
            if args.only in ("", "interactive"):
                report(
                    f"interactive call, {INTERACTIVE_BODY // 1_000_000} MB answer",
                    "interactive",
                    run_child(env_file, "interactive", "big"),
                    run_child(env_file, "interactive", "small"),
                )
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def archive_cases(env_file: Path, ids: dict[str, str], sources: int) -> None:
    for name, big, small in (("Agent", "agent", "agent_small"),
                             ("Sonar", "sonar", "sonar_small")):  # fmt: skip
        report(
            f"refresher archive, {name} answer of {sources:,} sources",
            "archive",
            run_child(env_file, "archive", ids[big]),
            run_child(env_file, "archive", ids[small]),
        )


def image_cases(env_file: Path, folder: Path, megapixels: float, limit: int) -> None:
    images = write_images(folder, megapixels, limit)
    small = run_child(env_file, "image", str(images["1mp.png"]))
    for name, big in (
        (f"image decode, {megapixels:g} MP PNG", "big.png"),
        (f"image decode, {megapixels:g} MP JPEG", "big.jpg"),
        (f"image decode, {limit * 0.99 / 1e6:.1f} MP PNG with alpha", "limit.png"),
    ):
        report(name, "image", run_child(env_file, "image", str(images[big])), small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=1_000_000)
    parser.add_argument("--megapixels", type=float, default=39.7)
    parser.add_argument(
        "--only", choices=("archive", "image", "interactive"), default="", help="one kind of case"
    )
    parser.add_argument("--child", choices=("archive", "image", "interactive"))
    parser.add_argument("--arg", default="")
    parser.add_argument("--env", default="")
    args = parser.parse_args()
    if args.child:
        args.case = args.child
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
