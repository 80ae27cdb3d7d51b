"""The downloaded archive opens offline in Chromium from file:// with its images, and asks
nothing of any server."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from sonarweb.answers import render_completion
from sonarweb.answers.images import ImageCopy
from sonarweb.media.bundle import BundleImage, build_bundle
from sonarweb.media.decode import reencode
from sonarweb.media.links import team_image_url
from sonarweb.perplexity.sonar import parse_completion
from sonarweb.simulator.corpus import generate_completion
from sonarweb.simulator.images import PREFIX
from sonarweb.simulator.raster import render_raster

pytestmark = pytest.mark.browser


def _picture(url: str) -> BundleImage:
    """The image the simulator would serve at url, re-encoded as the archive does."""
    name = url.split(PREFIX, 1)[1].split("?", 1)[0].removesuffix(".png")
    full = reencode(render_raster(name, "A chart"), max_pixels=10**8).full
    return BundleImage(
        sha256=full.sha256, source_url=url, data=full.data, aliases=(team_image_url(full.sha256),)
    )


def test_the_bundle_reads_offline_with_its_images(browser, tmp_path):
    base = "http://127.0.0.1:9"  # nothing listens there: the bundle must not need it
    completion = generate_completion("How do heat pumps cope with frost?", images=4,
                                     image_base=base)  # fmt: skip
    parsed = parse_completion(completion)
    images = [_picture(i.image_url) for i in parsed.images]
    # The page as the archive renders it: every image from its local copy.
    copies = {i.source_url: ImageCopy(full_url=team_image_url(i.sha256)) for i in images}
    data = build_bundle(
        title="How do heat pumps cope with frost?",
        markdown="# Answer\n",
        raw_json=json.dumps({"id": "x", "status": "COMPLETED", "response": completion}),
        answer_html=render_completion(parsed, images=copies),
        images=images,
        facts=[("Request ID", "x")],
        folder="frost",
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path)
    index = tmp_path / "frost" / "index.html"

    context = browser.new_context(offline=True)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(index.as_uri())
    page.wait_for_function(
        "() => [...document.images].length === 4 && "
        "[...document.images].every(i => i.complete && i.naturalWidth > 0)",
        timeout=60_000,
    )
    assert page.locator("h1").first.inner_text() == "How do heat pumps cope with frost?"
    # The inline styles apply: the gallery is a grid, as on the permalink.
    assert page.eval_on_selector(".gallery", "e => getComputedStyle(e).display") == "grid"
    assert requested and all(url.startswith("file://") for url in requested)
    loaded = {url.rsplit("/", 1)[1] for url in requested if "/images/" in url}
    assert loaded == {f"{i.sha256}.webp" for i in images}
    assert all(hashlib.sha256(i.data).hexdigest() == i.sha256 for i in images)
    page.screenshot(path=str(tmp_path / "bundle.png"), full_page=True)
    context.close()
