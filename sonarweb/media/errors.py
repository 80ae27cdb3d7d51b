"""Why an image could not be archived: each failure carries a sentence for people.

``retryable`` says whether trying again later may help (the network, a slow or busy host);
a refusal by policy (address, size, format) gives the same answer every time.
"""

from __future__ import annotations


class ImageFailure(Exception):
    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchRefused(ImageFailure):
    """The URL may not be fetched: scheme, credentials in it, too many redirects."""


class AddressRefused(FetchRefused):
    """The host resolves to an address a server-side fetch may not reach."""

    def __init__(self, address: str, kind: str) -> None:
        super().__init__(f"The image host resolves to a {kind} address ({address}).")
        self.address = address
        self.kind = kind


class TooLarge(ImageFailure):
    """More bytes than the per-image cap."""


class TooSlow(ImageFailure):
    """The total deadline passed (connect, headers and body together)."""

    retryable = True


class Unreachable(ImageFailure):
    """DNS, connection or TLS failure, or the connection broke."""

    retryable = True


class BadResponse(ImageFailure):
    """An HTTP answer that is not the image: an error status, an encoded body."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable


class NotAnImage(ImageFailure):
    """The bytes are not a raster image Pillow decodes (SVG, HTML, a broken file)."""


class ImageRefused(ImageFailure):
    """An image, but one we do not keep: animated, or too many pixels."""


class SweptMeanwhile(ImageFailure):
    """The stored copy was deleted as unused while this answer was being given it, twice."""

    retryable = True
