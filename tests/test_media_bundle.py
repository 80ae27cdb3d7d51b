"""The portable archive of one answer: what the .zip holds, and that it names nothing remote."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

import pytest

from sonarweb.media.bundle import BundleImage, build_bundle, stored_bundle_images
from sonarweb.media.decode import reencode
from sonarweb.media.links import team_image_url
from sonarweb.media.models import AnswerImage, ImageStatus, url_hash
from sonarweb.media.store import keep
from sonarweb.tracker.models import TrackedRequest, UpstreamStatus

from .media_helpers import png

INLINE = "https://pics.example/inline%20chart.png"
GALLERY = "https://pics.example/g1.jpg"
GONE = "https://tracker.example/pixel.gif"
MARKDOWN = f"""# Frost and heat pumps

See ![the chart](<https://pics.example/inline chart.png> "Costs") and ![lost]({GONE}).

![by reference][r]

[r]: {GALLERY}
"""
RAW = '{"id": "req-ü", "status": "COMPLETED",  "response": {"note": "kept\\u00e9 exactly"}}\n'


def image(sha: str, url: str, kind: str = "gallery", caption: str = "") -> BundleImage:
    return BundleImage(
        sha256=sha, source_url=url, data=b"RIFF-" + sha.encode(), kind=kind, caption=caption,
        origin_url="https://pics.example/page", aliases=(team_image_url(sha),),
    )  # fmt: skip


IMAGES = [
    image("a" * 64, GALLERY, caption="Gallery [one]"),
    image("b" * 64, INLINE, kind="inline", caption="the chart"),
]
HTML = (
    '<article class="answer"><div class="answer-body"><p>See '
    f'<img src="{INLINE}" alt="the chart"> and <img src="{GONE}" alt="lost"></p></div>'
    '<section class="answer-gallery"><ul class="gallery"><li><a class="gallery-thumb" '
    f'href="https://pics.example/page"><img src="{team_image_url("a" * 64)}" alt="Gallery one">'
    "</a></li></ul></section></article>"
)


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def bundle(**overrides) -> bytes:
    arguments = dict(
        title="Frost and heat pumps", markdown=MARKDOWN, raw_json=RAW, answer_html=HTML,
        images=IMAGES, facts=[("Request ID", "req-1"), ("Model", "sonar-deep-research")],
        folder="frost",
    )  # fmt: skip
    return build_bundle(**{**arguments, **overrides})


def test_the_zip_holds_the_page_the_markdown_the_json_and_the_images():
    files = unzip(bundle())
    assert set(files) == {
        "frost/index.html",
        "frost/answer.md",
        "frost/answer.json",
        f"frost/images/{'a' * 64}.webp",
        f"frost/images/{'b' * 64}.webp",
    }
    assert files["frost/answer.json"] == RAW.encode()
    assert files[f"frost/images/{'a' * 64}.webp"] == IMAGES[0].data


def test_markdown_points_at_the_bundled_files():
    text = unzip(bundle())["frost/answer.md"].decode()
    assert f'![the chart](images/{"b" * 64}.webp "Costs")' in text
    assert f"[r]: images/{'a' * 64}.webp" in text
    # An image that was not archived stays a link, never an image to load.
    assert f"[lost]({GONE})" in text and "![lost]" not in text
    assert f"## Images\n\n![Gallery \\[one\\]](images/{'a' * 64}.webp)" in text
    assert "From <https://pics.example/page>" in text


def test_the_page_inlines_its_styles_and_loads_only_bundled_files():
    page = unzip(bundle())["frost/index.html"].decode()
    assert "<style>" in page and ".gallery-thumb" in page and "--accent" in page
    assert "<link" not in page and "<script" not in page
    sources = re.findall(r'<img[^>]*\bsrc="([^"]*)"', page)
    assert sources == [f"images/{'b' * 64}.webp", f"images/{'a' * 64}.webp"]
    assert GONE not in page and "[lost: not archived]" in page
    assert 'href="https://pics.example/page"' in page  # links stay links
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "req-1" in page and "sonar-deep-research" in page


def test_the_same_answer_gives_the_same_bytes():
    assert hashlib.sha256(bundle()).digest() == hashlib.sha256(bundle()).digest()


@pytest.mark.django_db
def test_stored_images_are_read_from_the_archive(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    data = png(900, 500, "purple")
    kept = keep(
        reencode(data, max_pixels=10**8),
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_size=len(data),
    )
    tracked = TrackedRequest.objects.create(request_id="r", status=UpstreamStatus.COMPLETED)
    for position, (url, status) in enumerate(
        [(GALLERY, ImageStatus.STORED), (GONE, ImageStatus.FAILED)]
    ):
        AnswerImage.objects.create(
            tracked=tracked, url=url, url_hash=url_hash(url), position=position, status=status,
            image=kept if status == ImageStatus.STORED else None, caption="Purple",
        )  # fmt: skip
    [found] = stored_bundle_images(tracked.pk)
    assert found.source_url == GALLERY and found.sha256 == kept.sha256
    assert hashlib.sha256(found.data).hexdigest() == kept.sha256
    assert team_image_url(kept.thumb_sha256) in found.aliases
    files = unzip(build_bundle(title="t", markdown="", raw_json=json.dumps({}),
                               answer_html="", images=[found]))  # fmt: skip
    assert files[f"answer/images/{kept.sha256}.webp"] == found.data
