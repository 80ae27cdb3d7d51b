"""Addresses of archived images, for the renderer and the share page.

Rendered answers name images by their team address (``/images/<sha>.webp``); a public page
serves the same HTML with those addresses moved under its token, where the shared-image
view checks that each image belongs to the shared answer.
"""

from __future__ import annotations

TEAM_PREFIX = "/images/"


def team_image_url(sha256: str) -> str:
    return f"{TEAM_PREFIX}{sha256}.webp"


def shared_image_url(token: str, sha256: str) -> str:
    return f"/s/{token}/images/{sha256}.webp"


def for_share(html: str, token: str) -> str:
    """Rendered answer HTML with its image addresses under the share link's token.

    Only attribute values that start with the team prefix change; the fragment is sanitized
    HTML whose attributes are always double-quoted.
    """
    shared = f"/s/{token}/images/"
    return html.replace(f'src="{TEAM_PREFIX}', f'src="{shared}').replace(
        f'href="{TEAM_PREFIX}', f'href="{shared}'
    )
