"""Memory on allowed but large inputs: images decoded within a bound, answers read without
extra copies, and calls a person waits on capped well below the refresher's.

Image memory is Pillow's own (not seen by tracemalloc), so it is measured as the growth of
a fresh process's peak resident memory; Python-side copies are measured with tracemalloc.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from sonarweb.answers.export import render_plain_markdown
from sonarweb.answers.render import UNCITED_LISTED, render_completion
from sonarweb.media import conf
from sonarweb.media.decode import _fit_size, _resampled, _target_mode, reencode
from sonarweb.media.errors import ImageRefused
from sonarweb.perplexity import client as upstream
from sonarweb.perplexity import transport as wire
from sonarweb.perplexity.documents import loads_document
from sonarweb.perplexity.payload import Completion, Job, SearchResult
from sonarweb.tracker.keys.upstream import client_for, interactive_client
from sonarweb.tracker.models import ApiKey

from .conftest import OWNER_KEY

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **({"compress_level": 1} if fmt == "PNG" else {"quality": 80}))
    return out.getvalue()


def chart(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Lines, text and a gradient: content with hard edges, where resampling shows."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 37):
        draw.line((x, 0, size[0] - x, size[1]), fill=(x % 255, 80, 200), width=3)
    for y in range(0, size[1], 50):
        draw.text((10, y), f"Quarterly revenue, row {y}", fill="black")
    if mode in ("RGBA", "LA"):
        alpha = Image.radial_gradient("L").resize(size)
        image = image.convert(mode)
        image.putalpha(alpha)
    elif mode == "P":
        image = image.quantize(32)
    return image


# Images ---------------------------------------------------------------------------------


def test_a_20_mp_png_is_refused_before_decoding_while_a_20_mp_jpeg_is_archived():
    size = (5164, 3873)  # 20 MP: under the 40 MP a file may declare, over the 16 MP decoded
    canvas = Image.new("RGB", size, (40, 90, 160))
    png, jpeg = encoded(canvas, "PNG"), encoded(canvas, "JPEG")
    del canvas
    with pytest.raises(ImageRefused) as refused:
        reencode(png, max_pixels=40_000_000)
    assert refused.value.reason == (
        "The image is 5164 x 3873 pixels, more than the 16 million a PNG image may have: "
        "unlike a JPEG, it cannot be decoded at a smaller size."
    )
    # A JPEG is decoded at a fraction of its size that still covers the full rendition
    # (here half, 2582 x 1937: 5 MP), and kept.
    decoded = reencode(jpeg, max_pixels=40_000_000)
    assert (decoded.source_format, decoded.width, decoded.height) == ("JPEG", 5164, 3873)
    assert (decoded.full.width, decoded.full.height) == (1600, 1200)


def test_the_decoded_limit_is_a_setting(settings):
    assert conf.settings_from_env({})["SONARWEB_IMAGE_MAX_DECODED_PIXELS"] == 16_000_000
    env = {"SONARWEB_IMAGE_MAX_DECODED_PIXELS": "2500000"}
    assert conf.settings_from_env(env)["SONARWEB_IMAGE_MAX_DECODED_PIXELS"] == 2_500_000
    png = encoded(Image.new("RGB", (2000, 1500), "white"), "PNG")
    settings.SONARWEB_IMAGE_MAX_DECODED_PIXELS = 2_000_000
    with pytest.raises(ImageRefused, match="more than the 2 million a PNG image may have"):
        reencode(png, max_pixels=40_000_000)
    assert reencode(png, max_pixels=40_000_000, max_decoded_pixels=3_000_000).full.width == 1600


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P"])
def test_resampling_by_bands_draws_what_one_resize_draws(mode):
    image = chart((2600, 1950), mode)
    target = _target_mode(image)
    size = _fit_size(image.width, image.height, 1600)
    ours = _resampled(image, size, target)
    theirs = image.convert(target).resize(size, Image.Resampling.LANCZOS)
    assert (ours.size, ours.mode) == (theirs.size, theirs.mode)
    if target == "RGBA":
        # Colour under full transparency is invisible (and noisy); compare what is seen.
        white = Image.new("RGBA", size, "white")
        ours, theirs = Image.alpha_composite(white, ours), Image.alpha_composite(white, theirs)
    difference = ImageChops.difference(ours, theirs)
    assert max(high for _, high in difference.getextrema()) <= 2
    assert max(ImageStat.Stat(difference).mean) < 0.01


PEAK_SCRIPT = """
import gc, io, json, sys
from PIL import Image
from sonarweb.media.decode import reencode

size, mode = (4600, 3450), "RGBA"  # 15.9 MP with alpha: the costliest PNG still decoded
image = Image.linear_gradient("L").resize(size)
pixels = Image.merge("RGBA", (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                              image, Image.radial_gradient("L").resize(size)))
out = io.BytesIO()
pixels.save(out, "PNG", compress_level=1)
data = out.getvalue()
del image, pixels, out
gc.collect()

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
decoded = reencode(data, max_pixels=40_000_000, max_decoded_pixels=16_000_000)
print(json.dumps({"growth_mb": (status("VmHWM") - before) / 1024, "width": decoded.full.width}))
"""


def peak_of(script: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_decoding_the_largest_png_allowed_stays_under_120_mb():
    # Decoded, 15.9 MP are 64 MB; Pillow's resize would add a converted copy and a
    # premultiplied one (about 200 MB in all). Banded, only the decoded pixels are full-size.
    result = peak_of(PEAK_SCRIPT)
    assert result["width"] == 1600
    assert result["growth_mb"] < 120, result


# Answers ---------------------------------------------------------------------------------


def traced_peak(call: Callable[[], object]) -> tuple[int, object]:
    """(peak bytes Python allocated during ``call()``, beyond what it held before, and what
    the call returned or raised)."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        try:
            outcome: object = call()
        except upstream.UpstreamError as exc:
            outcome = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before, outcome


def test_read_capped_returns_the_buffer_it_read_into(sim_server, simulator):
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=0)
    simulator.inject("oversize", endpoint="run", size=5 * MB)
    with upstream.PerplexityClient(OWNER_KEY, base_url=sim_server.url) as api:
        request = api._http.build_request(
            "GET", f"/v1/agent/{run_id}", headers={"Authorization": f"Bearer {OWNER_KEY}"}
        )
        response = api._http.send(request, stream=True)
        try:
            peak, body = traced_peak(lambda: wire.read_capped(response, 32 * MB))
        finally:
            response.close()
    # The buffer grows in place; a copy to bytes at the end would double the peak.
    assert peak < 1.5 * 5 * MB, peak / MB
    assert isinstance(body, bytearray) and len(body) == 5 * MB


def test_fetching_a_5_mb_answer_holds_its_text_once(db, sim_server, simulator, owner):
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=0)
    simulator.inject("oversize", endpoint="run", job_id=run_id, size=5 * MB)
    with client_for(ApiKey.objects.get(user=owner)) as api:
        peak, outcome = traced_peak(lambda: api.get_run(run_id))
    job, text = outcome  # type: ignore[misc]
    assert job.id == run_id and len(text) == 5 * MB
    # The bytes (5 MB), then the text (5 MB) and the parsed JSON (its 5 MB string): at most
    # two of them at a time. Keeping the bytes while parsing made it three, plus a copy.
    assert peak < 2.5 * 5 * MB, peak / MB


def test_an_interactive_call_stops_at_its_own_cap_quickly(
    db, sim_server, simulator, owner, settings
):
    assert settings.PERPLEXITY_INTERACTIVE_MAX_BYTES == 4 * MB
    # No Content-Length to refuse it by: the cap holds while the body streams in.
    simulator.inject("oversize", endpoint="start", size=30 * 1000 * 1000, declare_length=False)
    body = {"input": "A question?", "preset": "fast", "background": True}
    with interactive_client(ApiKey.objects.get(user=owner)) as api:
        peak, outcome = traced_peak(lambda: api.create_run(body))
    assert isinstance(outcome, upstream.TooLarge), outcome
    assert str(outcome) == "Perplexity's answer is over the 4 MB limit."
    # It stopped reading after about 4 MB, not 30 (and kept no copy of what it read).
    assert peak < 2 * 4 * MB, peak / MB


def test_the_refresher_still_reads_answers_over_the_interactive_cap(
    db, sim_server, simulator, owner, settings
):
    settings.PERPLEXITY_INTERACTIVE_MAX_BYTES = 1 * MB
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=0)
    simulator.inject("oversize", endpoint="run", job_id=run_id, size=2 * MB, times=2)
    with client_for(ApiKey.objects.get(user=owner)) as api:
        job, text = api.get_run(run_id)
    assert job.id == run_id and len(text) == 2 * MB
    with interactive_client(ApiKey.objects.get(user=owner)) as api:
        with pytest.raises(upstream.TooLarge, match="over the 1 MB limit"):
            api.get_run(run_id)


# A million small sources are about the most the response cap lets in; a fifth of that keeps
# these quick and the figures per source the same.
MANY = 200_000


def run_with_many_sources(count: int) -> str:
    results = [{"id": 1, "url": "https://cited.example/1", "title": "Cited"}]
    results += [{"url": f"https://a.io/{n:x}"} for n in range(count)]
    document = {
        "id": "resp_many",
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "search_results", "results": results},
            {"type": "message", "content": [{"type": "output_text", "text": "An answer [1]."}]},
        ],
    }
    return json.dumps(document)


def test_reading_an_answer_with_many_sources_never_holds_them_all_as_json():
    text = run_with_many_sources(MANY)
    peak, job = traced_peak(lambda: loads_document(text))
    assert isinstance(job, Job) and job.response is not None
    assert len(job.response.search_results) == MANY + 1
    assert job.response.citations == ("https://cited.example/1",)
    # What is kept is a SearchResult and its URL a source (~150 bytes). Parsed whole first,
    # each source was a dict as well, all at once: about 380 bytes a source at the peak.
    assert peak < 250 * MANY, peak / MANY


def test_reading_a_sonar_job_with_many_sources_never_holds_them_all_as_json():
    sources = [{"url": f"https://a.io/{n:x}"} for n in range(MANY)]
    response = {"choices": [{"message": {"content": "An answer."}}], "search_results": sources}
    text = json.dumps({"id": "job-many", "status": "COMPLETED", "response": response})
    del sources, response
    peak, job = traced_peak(lambda: loads_document(text))
    assert isinstance(job, Job) and job.response is not None
    assert len(job.response.search_results) == MANY
    assert peak < 250 * MANY, peak / MANY


def test_rendering_an_answer_with_many_sources_builds_only_those_it_lists():
    completion = Completion(
        content="An answer [1].",
        citations=("https://cited.example/1",),
        search_results=tuple(SearchResult(url=f"https://a.io/{n:x}") for n in range(MANY)),
    )
    peak, outcome = traced_peak(
        lambda: (render_completion(completion), render_plain_markdown(completion))
    )
    html, markdown = outcome  # type: ignore[misc]
    listed = 1 + UNCITED_LISTED
    assert html.count('<li class="source-card') == listed
    assert f"{MANY - UNCITED_LISTED:,} more sources that the answer does not cite" in html
    assert f"{MANY - UNCITED_LISTED:,} more sources that the answer does not cite" in markdown
    # The numbering of a million sources is a few arrays (~30 bytes a source); a Source
    # object for each, and a set of their keys, were about 300.
    assert peak < 60 * MANY, peak / MANY
