"""Addresses of archived images, for the renderer.

Rendered answers name images by their team address (``/images/<sha>.webp``); a public share
page moves them under its token (``sonarweb/tracker/sharing/addresses.py``).
"""

from __future__ import annotations

TEAM_PREFIX = "/images/"


def team_image_url(sha256: str) -> str:
    return f"{TEAM_PREFIX}{sha256}.webp"
