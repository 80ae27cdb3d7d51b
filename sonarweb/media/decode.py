"""Bytes from the web -> two clean WebP renditions, or a refusal with a reason.

Only raster formats Pillow decodes are kept (``FORMATS``; SVG is a document that can carry
scripts and links, so it is refused). Before any pixel is decoded the declared size is checked
against a pixel limit, so a small file that declares a huge canvas (a decompression bomb)
costs nothing. Animated images are refused. The outputs are drawn from the pixels alone: no
EXIF (so no GPS position), no ICC profile, no XMP, no comments survive re-encoding.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from functools import cached_property
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError, features

from .errors import ImageFailure, ImageRefused, NotAnImage

FULL_SIDE = 1600
THUMB_SIDE = 400
# Formats with a long history and a well-fuzzed decoder; obscure ones stay out of reach.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP") + (("AVIF",) if features.check("avif") else ())

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


def _fit(image: Image.Image, side: int) -> Image.Image:
    width, height = image.size
    scale = side / max(width, height)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(image: Image.Image, quality: int) -> Rendition:
    # Nothing from the source's metadata is passed to save(); clearing info is for whoever
    # adds a keyword later and expects Pillow to look there.
    image.info = {}
    out = BytesIO()
    image.save(out, "WEBP", quality=quality, method=4)
    return Rendition(data=out.getvalue(), width=image.width, height=image.height)


def _pixels(image: Image.Image) -> Image.Image:
    """The image in RGB, or RGBA when it has transparency; rotated as its EXIF says."""
    image = ImageOps.exif_transpose(image) or image
    transparent = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or ("transparency" in image.info)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # High bit-depth greyscale: scale to 8 bits rather than clip to white.
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    return image.convert("RGBA" if transparent else "RGB")


def _decode(data: bytes, max_pixels: int, full_side: int) -> tuple[Image.Image, str, int, int]:
    """(pixels, source format, source width, source height), or an ImageFailure."""
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
        # The source's size as a viewer sees it: before draft() shrinks it, after rotation.
        if image.getexif().get(0x0112) in (5, 6, 7, 8):
            width, height = height, width
        if source_format == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale when that still covers the full rendition.
            image.draft(None, (full_side, full_side))
        image.load()
        return _pixels(image), source_format, width, height


def reencode(
    data: bytes,
    *,
    max_pixels: int,
    full_side: int = FULL_SIDE,
    thumb_side: int = THUMB_SIDE,
) -> Decoded:
    """The image in ``data`` as a full rendition (at most ``full_side`` px on its longer side)
    and a thumbnail, both WebP; NotAnImage or ImageRefused otherwise."""
    try:
        pixels, source_format, width, height = _decode(data, max_pixels, full_side)
    except ImageFailure:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("The image declares too many pixels.") from None
    except Exception:
        # A damaged file makes Pillow's decoders raise all sorts (OSError, IndexError,
        # struct.error, ...): each one means the same thing here.
        raise NotAnImage("The image file is broken or cut short.") from None
    full_image = _fit(pixels, full_side)
    full = _encode(full_image.copy() if full_image is pixels else full_image, quality=82)
    thumb = _encode(_fit(full_image, thumb_side).copy(), quality=78)
    return Decoded(source_format=source_format, width=width, height=height, full=full, thumb=thumb)
