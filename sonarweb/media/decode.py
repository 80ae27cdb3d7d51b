"""Bytes from the web -> two clean WebP renditions, or a refusal with a reason.

Only raster formats Pillow decodes are kept (``FORMATS``; SVG is a document that can carry
scripts and links, so it is refused). Before any pixel is decoded the declared size is checked
against a pixel limit, so a small file that declares a huge canvas (a decompression bomb)
costs nothing; then the size it would be decoded at is checked against a lower one (a JPEG is
decoded at 1/2 to 1/8 scale, other formats in full), which bounds the memory a decode takes.
Nothing full-size is made beside the decoded pixels: they are resampled a band of rows at a
time. Animated images are refused. The outputs are drawn from the pixels alone: no
EXIF (so no GPS position), no ICC profile, no XMP, no comments survive re-encoding.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from io import BytesIO

from PIL import Image, UnidentifiedImageError, features

from .conf import setting
from .errors import ImageFailure, ImageRefused, NotAnImage

FULL_SIDE = 1600
THUMB_SIDE = 400
# Formats with a long history and a well-fuzzed decoder; obscure ones stay out of reach.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP") + (("AVIF",) if features.check("avif") else ())

HIGH_BIT_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# Source pixels resampled at a time (8 MB), and the reach of the LANCZOS filter in source
# pixels per unit of scale: a band's source rows are what is held beside the decoded image.
BAND_PIXELS = 2_000_000
LANCZOS_SUPPORT = 3.0
# EXIF orientation -> the turn that shows the image upright (as ImageOps.exif_transpose).
EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# This process never wants a decompression bomb decoded: the warning Pillow gives for a large
# canvas becomes an error wherever it is raised (warnings.catch_warnings is not thread-safe).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Rendition:
    data: bytes
    width: int
    height: int

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Decoded:
    source_format: str
    width: int  # of the source, after EXIF rotation
    height: int
    full: Rendition
    thumb: Rendition


def _not_an_image(data: bytes) -> NotAnImage:
    head = data[:512].lstrip().lower()
    if b"<svg" in head or (head.startswith(b"<?xml") and b"svg" in head):
        return NotAnImage("SVG is not archived: it is a document that can run scripts.")
    if head.startswith((b"<!doctype", b"<html")) or b"<html" in head:
        return NotAnImage("The address answered a web page, not an image.")
    return NotAnImage("The file is not an image (or not in JPEG, PNG, GIF, WebP or BMP).")


def _fit_size(width: int, height: int, side: int) -> tuple[int, int]:
    """The size of ``width`` x ``height`` scaled down to at most ``side`` on its longer side."""
    scale = side / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(image: Image.Image, quality: int) -> Rendition:
    # Nothing from the source's metadata is passed to save(); clearing info is for whoever
    # adds a keyword later and expects Pillow to look there.
    image.info = {}
    out = BytesIO()
    image.save(out, "WEBP", quality=quality, method=4)
    return Rendition(data=out.getvalue(), width=image.width, height=image.height)


def _target_mode(image: Image.Image) -> str:
    """RGB, or RGBA when the image has transparency."""
    transparent = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or ("transparency" in image.info)
    return "RGBA" if transparent else "RGB"


def _converted(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in ``mode`` (RGB or RGBA); the same object when it already is."""
    if image.mode in HIGH_BIT_DEPTH:
        # High bit-depth greyscale: scale to 8 bits rather than clip to white.
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    return image if image.mode == mode else image.convert(mode)


def _resampled(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """``image`` resized to ``size`` with LANCZOS, in ``mode``, a band of rows at a time.

    Pillow's own resize would first make a full-size copy of a decoded image that is not in a
    mode it resamples (a palette, grey with alpha, 16-bit grey) and of any image with alpha
    (premultiplied, so that edges keep their colour). Here each band of output rows is made
    from just the source rows its filter reads, converted on their own, in two passes
    (across, then down) as Pillow makes them: nothing full-size is held beside the decoded
    image, and the result is Pillow's to within rounding.
    """
    # Colour is averaged premultiplied by alpha, as Pillow does, or transparent pixels bleed.
    work = "RGBa" if mode == "RGBA" else mode
    out = Image.new(mode, size)
    step = image.height / size[1]
    reach = math.ceil(LANCZOS_SUPPORT * max(step, 1.0)) + 1
    rows = max(1, int(BAND_PIXELS / (image.width * max(step, 1.0))))
    for top in range(0, size[1], rows):
        bottom = min(top + rows, size[1])
        start, end = top * step, min(bottom * step, float(image.height))
        first = max(0, math.floor(start) - reach)
        last = min(image.height, math.ceil(end) + reach)
        band = _converted(image.crop((0, first, image.width, last)), mode)
        band = band if work == mode else band.convert(work)
        across = band.resize((size[0], band.height), Image.Resampling.LANCZOS)
        del band
        box = (0.0, start - first, float(size[0]), end - first)
        piece = across.resize((size[0], bottom - top), Image.Resampling.LANCZOS, box=box)
        out.paste(piece if piece.mode == mode else piece.convert(mode), (0, top))
    return out


def _full_rendition(
    image: Image.Image, size: tuple[int, int], orientation: int | None
) -> Image.Image:
    """The decoded image at ``size`` (the source's, fitted: a drafted JPEG is a little larger
    than a fraction of it), in RGB or RGBA, rotated as its EXIF says; always a new image, so
    the decoded one can be freed."""
    mode = _target_mode(image)
    if size == image.size:
        pixels = _converted(image, mode)
        pixels = pixels.copy() if pixels is image else pixels
    else:
        pixels = _resampled(image, size, mode)
    # Rotated once small: a turn of the full-size image would be one more full-size copy.
    method = EXIF_TRANSPOSE.get(orientation or 1)
    return pixels if method is None else pixels.transpose(method)


def _decode(data: bytes, max_pixels: int, max_decoded: int) -> tuple[Image.Image, str, int, int]:
    """(full rendition, source format, source width, source height), or an ImageFailure."""
    try:
        image = Image.open(BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("The image declares too many pixels (a decompression bomb?).") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise _not_an_image(data) from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRefused(
                f"The image is {width} x {height} pixels, more than the "
                f"{max_pixels / 1_000_000:g} million allowed."
            )
        if getattr(image, "n_frames", 1) > 1:
            raise ImageRefused("Animated images are not archived.")
        source_format = str(image.format or "")
        fitted = _fit_size(width, height, FULL_SIDE)
        if source_format == "JPEG":
            # Decoded at 1/2, 1/4 or 1/8 scale when that still covers the full rendition: asked
            # for the rendition's own size, draft() picks the smallest scale that does.
            image.draft(None, fitted)
        if image.width * image.height > max_decoded:
            raise ImageRefused(_too_big_to_decode(image, source_format, max_decoded))
        # Only now: a PNG's EXIF may follow its pixels, so Pillow decodes them to find it.
        orientation = image.getexif().get(0x0112)
        # The source's size as a viewer sees it: before draft() shrinks it, after rotation.
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        image.load()
        rendition = _full_rendition(image, fitted, orientation)
        return rendition, source_format, width, height


def _too_big_to_decode(image: Image.Image, source_format: str, limit: int) -> str:
    million = f"{limit / 1_000_000:g} million"
    if source_format == "JPEG":
        return (
            f"The image would be decoded at {image.width} x {image.height} pixels, more than "
            f"the {million} allowed."
        )
    return (
        f"The image is {image.width} x {image.height} pixels, more than the {million} a "
        f"{source_format or 'file'} image may have: unlike a JPEG, it cannot be decoded at a "
        "smaller size."
    )


def reencode(data: bytes, *, max_pixels: int, max_decoded_pixels: int | None = None) -> Decoded:
    """The image in ``data`` as a full rendition (at most ``FULL_SIDE`` px on its longer side)
    and a thumbnail, both WebP; NotAnImage or ImageRefused otherwise.

    ``max_pixels`` bounds the size an image declares; ``max_decoded_pixels`` (by default
    SONARWEB_IMAGE_MAX_DECODED_PIXELS) the size it is decoded at, which is what costs memory:
    a JPEG is decoded at 1/2 to 1/8 of its size, other formats in full."""
    if max_decoded_pixels is None:
        max_decoded_pixels = int(setting("SONARWEB_IMAGE_MAX_DECODED_PIXELS"))
    try:
        full_image, source_format, width, height = _decode(data, max_pixels, max_decoded_pixels)
    except ImageFailure:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("The image declares too many pixels.") from None
    except Exception:
        # A damaged file makes Pillow's decoders raise all sorts (OSError, IndexError,
        # struct.error, ...): each one means the same thing here.
        raise NotAnImage("The image file is broken or cut short.") from None
    # A new image even when the full rendition is already small: resize() copies then.
    thumb_size = _fit_size(full_image.width, full_image.height, THUMB_SIDE)
    thumb_image = full_image.resize(thumb_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    thumb = _encode(thumb_image, quality=78)
    full = _encode(full_image, quality=82)
    return Decoded(source_format=source_format, width=width, height=height, full=full, thumb=thumb)
