"""Decoding with Pillow: what is kept, what is refused, and what the renditions hold."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from sonarweb.media.decode import reencode
from sonarweb.media.errors import ImageFailure, ImageRefused, NotAnImage

from .media_helpers import animated_gif, bomb_png, photo, png

LIMIT = 40_000_000
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_large_photo_becomes_a_full_and_a_thumbnail_webp():
    decoded = reencode(photo(3000, 2000), max_pixels=LIMIT)
    assert (decoded.source_format, decoded.width, decoded.height) == ("JPEG", 3000, 2000)
    full, thumb = opened(decoded.full.data), opened(decoded.thumb.data)
    assert (full.format, full.size) == ("WEBP", (1600, 1067))
    assert (thumb.format, thumb.size) == ("WEBP", (400, 267))
    assert (decoded.full.width, decoded.full.height) == (1600, 1067)
    assert (decoded.thumb.width, decoded.thumb.height) == (400, 267)


def test_a_small_image_is_not_enlarged():
    decoded = reencode(png(300, 120), max_pixels=LIMIT)
    assert opened(decoded.full.data).size == (300, 120)
    assert opened(decoded.thumb.data).size == (300, 120)


def test_a_tall_image_is_bounded_by_its_height():
    decoded = reencode(png(500, 4000), max_pixels=LIMIT)
    assert opened(decoded.full.data).size == (200, 1600)
    assert opened(decoded.thumb.data).size == (50, 400)


def test_gps_exif_icc_and_comments_do_not_survive():
    source = Image.linear_gradient("L").resize((800, 600)).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Phone 12"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.2)})
    icc = b"\0" * 128 + b"acsp-fake-profile"
    out = io.BytesIO()
    source.save(out, "JPEG", exif=exif.tobytes(), icc_profile=icc, comment=b"secret note")
    original = opened(out.getvalue())
    assert original.getexif().get_ifd(GPS_IFD)  # the input really carries a position
    assert original.info.get("icc_profile") and original.info.get("comment")

    decoded = reencode(out.getvalue(), max_pixels=LIMIT)
    for data in (decoded.full.data, decoded.thumb.data):
        result = opened(data)
        assert not result.getexif()
        assert not result.getexif().get_ifd(GPS_IFD)
        for key in ("exif", "icc_profile", "xmp", "comment"):
            assert key not in result.info
        for marker in (b"EXIF", b"Exif", b"ICCP", b"XMP ", b"PhoneMaker", b"secret note"):
            assert marker not in data


def test_exif_rotation_is_applied_before_it_is_dropped():
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, shown rotated to portrait
    out = io.BytesIO()
    Image.new("RGB", (400, 200), "navy").save(out, "JPEG", exif=exif.tobytes())
    decoded = reencode(out.getvalue(), max_pixels=LIMIT)
    assert (decoded.width, decoded.height) == (200, 400)
    assert opened(decoded.full.data).size == (200, 400)


def test_transparency_is_kept():
    decoded = reencode(png(64, 64, (255, 0, 0, 0), mode="RGBA"), max_pixels=LIMIT)
    result = opened(decoded.full.data)
    assert result.mode == "RGBA" and result.getpixel((10, 10))[3] == 0


def test_the_same_pixels_give_the_same_bytes():
    data = photo(900, 600)
    assert (
        reencode(data, max_pixels=LIMIT).full.sha256 == reencode(data, max_pixels=LIMIT).full.sha256
    )


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "web page"),
        (b"%PDF-1.7\n" + b"\0" * 100, "not an image"),
        (b"", "not an image"),
        (bytes(range(256)) * 4, "not an image"),
    ],
)
def test_what_is_not_a_raster_image_is_refused(data, says):
    with pytest.raises(NotAnImage, match=says):
        reencode(data, max_pixels=LIMIT)


def test_a_truncated_image_is_refused():
    data = photo(800, 600)
    with pytest.raises(NotAnImage, match="broken"):
        reencode(data[: len(data) // 3], max_pixels=LIMIT)


def test_a_tiff_is_refused_though_pillow_could_read_it():
    out = io.BytesIO()
    Image.new("RGB", (20, 20)).save(out, "TIFF")
    with pytest.raises(NotAnImage):
        reencode(out.getvalue(), max_pixels=LIMIT)


@pytest.mark.parametrize("size", [(100_000, 100_000), (30_000, 30_000), (8_000, 8_000)])
def test_a_decompression_bomb_is_refused_before_decoding(size):
    data = bomb_png(*size)
    assert len(data) < 200
    with pytest.raises(ImageRefused, match="pixels"):
        reencode(data, max_pixels=LIMIT)


def test_the_pixel_limit_is_a_setting():
    with pytest.raises(ImageRefused, match="1000 x 1000 pixels"):
        reencode(png(1000, 1000), max_pixels=500_000)
    assert reencode(png(1000, 1000), max_pixels=1_000_000).full.width == 1000


def test_an_animated_gif_is_refused():
    with pytest.raises(ImageRefused, match="Animated"):
        reencode(animated_gif(), max_pixels=LIMIT)


def test_an_animated_webp_and_png_are_refused():
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "green")]
    for kind in ("WEBP", "PNG"):
        out = io.BytesIO()
        frames[0].save(out, kind, save_all=True, append_images=frames[1:], duration=100)
        with pytest.raises(ImageRefused, match="Animated"):
            reencode(out.getvalue(), max_pixels=LIMIT)


def test_a_still_gif_is_kept():
    out = io.BytesIO()
    Image.new("P", (40, 30), 3).save(out, "GIF")
    assert opened(reencode(out.getvalue(), max_pixels=LIMIT).full.data).size == (40, 30)


def test_damaged_files_are_refused_with_a_reason_never_an_unexpected_error():
    # Pillow's decoders raise OSError, IndexError, struct.error... on damaged input.
    rng = random.Random(20261127)
    seeds = [png(64, 48), photo(200, 150), animated_gif()]
    outcomes = set()
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        try:
            reencode(bytes(data), max_pixels=4_000_000)
            outcomes.add("kept")
        except ImageFailure as failure:
            assert failure.reason
            outcomes.add(type(failure).__name__)
    assert {"kept", "NotAnImage"} <= outcomes


def test_a_rotated_photo_is_turned_after_it_is_made_small():
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, shown rotated to portrait
    source = Image.new("RGB", (3000, 2000), "navy")
    source.paste((255, 200, 0), (0, 0, 1500, 2000))  # the stored left half: the top when shown
    out = io.BytesIO()
    source.save(out, "JPEG", exif=exif.tobytes())
    decoded = reencode(out.getvalue(), max_pixels=LIMIT)
    assert (decoded.width, decoded.height) == (2000, 3000)
    full = opened(decoded.full.data).convert("RGB")
    assert full.size == (1067, 1600)
    top, bottom = full.getpixel((533, 100)), full.getpixel((533, 1500))
    assert top[0] > 200 and bottom[2] > 100 and bottom[0] < 60
