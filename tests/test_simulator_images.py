"""The simulator's generated images: /_sim/images/<name>.png (.jpg, .svg), and answers that
point at them."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from sonarweb.answers import render_completion
from sonarweb.perplexity.sonar import parse_completion
from sonarweb.simulator.app import Simulator
from sonarweb.simulator.corpus import generate_completion
from sonarweb.simulator.images import image_path, render_svg
from sonarweb.simulator.raster import render_raster
from sonarweb.simulator.server import RunningServer, serve

KEY = "pplx-simtest-aaaa1111"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert(1)</script> & "quotes" </text><image href="https://evil.example/x"/>'


@pytest.fixture
def server() -> Iterator[RunningServer]:
    # The images need no control endpoints: a simulator on a public interface serves them too.
    with serve(Simulator([KEY], control=False)) as running:
        yield running


def fetch(server: RunningServer, path: str) -> httpx.Response:
    return httpx.get(server.url + path, timeout=5)


def svg_root(body: bytes) -> ET.Element:
    root = ET.fromstring(body)  # noqa: S314 - our own output, from a local test server
    assert root.tag == f"{SVG}svg"
    return root


def test_serves_a_static_svg_of_the_size_in_its_name_without_a_key(server):
    path = image_path("heat-pumps", 3, "0a1b2c3d", 1200, 800, "Chart: costs", "svg")
    response = fetch(server, path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'"
    root = svg_root(response.content)
    assert (root.get("width"), root.get("height")) == ("1200", "800")
    assert root.get("viewBox") == "0 0 1200 800"
    assert root.findtext(f"{SVG}title") == "Chart: costs"
    assert "Chart: costs" in "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    # Nothing that runs or loads: no script, no foreign object, no external reference.
    tags = {el.tag.removeprefix(SVG) for el in root.iter()}
    assert tags <= {"svg", "title", "defs", "linearGradient", "stop", "rect", "line",
                    "polygon", "polyline", "circle", "text"}  # fmt: skip
    for el in root.iter():
        assert not any(name.startswith("on") or "href" in name for name in el.attrib)
        assert "style" not in el.attrib


def test_titles_are_escaped(server):
    response = fetch(server, image_path("x", 1, "ffff0000", 640, 480, HOSTILE, "svg"))
    assert b"<script" not in response.content and b"<image" not in response.content
    root = svg_root(response.content)
    assert root.findtext(f"{SVG}title") == HOSTILE
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter(f"{SVG}image"))


def test_the_same_address_always_draws_the_same_picture():
    name = "heat-pumps/01-0a1b2c3d-800x600"
    assert render_svg(name, "A title") == render_svg(name, "A title")
    assert render_svg(name, "A title") != render_svg("heat-pumps/02-0a1b2c3d-800x600", "A title")


@pytest.mark.parametrize(
    ("name", "size"),
    [("a/01-x-1x1", ("16", "16")), ("a/01-x-99999x5", ("4000", "16")), ("plain", ("800", "600"))],
)
def test_sizes_are_clamped_or_defaulted(name, size):
    root = svg_root(render_svg(name, "t"))
    assert (root.get("width"), root.get("height")) == size


@pytest.mark.parametrize(
    "path",
    [
        "/_sim/images/",
        "/_sim/images/a.gif",
        "/_sim/images/a.svg.exe",
        "/_sim/images/../etc/passwd.svg",
        "/_sim/images/a%20b.svg",
        "/_sim/images/a/b/c/d/e.svg",
        "/_sim/images/" + "a" * 65 + ".svg",
    ],
)
def test_other_addresses_are_not_found(server, path):
    assert fetch(server, path).status_code == 404


def test_only_get_and_head(server):
    path = image_path("x", 1, "ab", 640, 480, "t")
    head = httpx.head(server.url + path, timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    response = httpx.post(server.url + path, timeout=5)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"


def test_a_simulator_given_a_base_points_images_there():
    sim = Simulator([KEY], image_base="http://127.0.0.1:9", sonar_retired=False)
    job_id = sim.add_job(KEY, queue_seconds=0, run_seconds=0, images=2)
    with serve(sim) as running:
        document = httpx.get(
            f"{running.url}/v1/async/sonar/{job_id}",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=5,
        ).json()
    urls = [i["image_url"] for i in document["response"]["images"]]
    assert len(urls) == 2 and all(u.startswith("http://127.0.0.1:9/_sim/images/") for u in urls)


def test_answers_point_at_the_simulator_when_it_knows_its_url():
    # As manage.py simulate does: the URL is known once bound, before any job is read.
    sim = Simulator([KEY], sonar_retired=False)
    job_id = sim.add_job(KEY, queue_seconds=0, run_seconds=0, images=4)
    with serve(sim) as own:
        sim.image_base = own.url
        document = httpx.get(
            f"{own.url}/v1/async/sonar/{job_id}",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=5,
        ).json()
        images = document["response"]["images"]
        assert len(images) == 4
        for image in images:
            url = image["image_url"]
            assert url.startswith(f"{own.url}/_sim/images/") and ".png?title=" in url
            assert parse_qs(urlsplit(url).query)["title"] == [image["title"]]
            response = httpx.get(url, timeout=5)
            assert response.headers["content-type"] == "image/png"
            picture = Image.open(io.BytesIO(response.content))
            assert picture.format == "PNG"
            assert picture.size == (image["width"], image["height"])


def test_the_app_archives_the_images_at_those_addresses():
    from sonarweb.media.refs import image_refs

    base = "http://127.0.0.1:8001"
    completion = generate_completion("How do heat pumps cope with frost?", images=3,
                                     image_base=base)  # fmt: skip
    refs = image_refs(parse_completion(completion))
    assert len(refs) == 3
    assert all(r.url.startswith(f"{base}/_sim/images/") for r in refs)
    # Until they are archived the page shows placeholders: it never loads them from there.
    html = render_completion(parse_completion(completion))
    assert re.findall(r'<img src="([^"]+)"', html) == []


def test_without_a_base_only_the_image_addresses_differ():
    question = "How do heat pumps cope with frost?"
    plain = generate_completion(question, seed="s")
    local = generate_completion(question, seed="s", image_base="http://127.0.0.1:8001")
    assert all(i["image_url"].startswith("https://images.example.org/") for i in plain["images"])
    for image in local["images"]:
        image.pop("image_url")
    for image in plain["images"]:
        image.pop("image_url")
    assert local == plain


@pytest.mark.parametrize(
    ("extension", "kind", "mime"), [("png", "PNG", "image/png"), ("jpg", "JPEG", "image/jpeg")]
)
def test_serves_raster_pictures_of_the_size_in_their_name(server, extension, kind, mime):
    path = image_path("heat-pumps", 3, "0a1b2c3d", 1200, 800, "Chart: costs", extension)
    response = fetch(server, path)
    assert response.status_code == 200
    assert response.headers["content-type"] == mime
    assert response.headers["x-content-type-options"] == "nosniff"
    picture = Image.open(io.BytesIO(response.content))
    assert (picture.format, picture.size) == (kind, (1200, 800))
    # A drawing, not a blank canvas: the title and the chart put many colours on it.
    assert len(picture.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 20


def test_the_same_address_always_draws_the_same_raster_picture():
    name = "heat-pumps/01-0a1b2c3d-640x480"
    render_raster.cache_clear()
    first = render_raster(name, "A title")
    render_raster.cache_clear()
    assert render_raster(name, "A title") == first
    assert render_raster(name, "Another title") != first
