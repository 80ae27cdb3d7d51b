"""Addresses under a public share link.

A shared answer is the same rendered HTML as the team's permalink, with its archived images'
team addresses (``/images/<sha>.webp``, ``sonarweb.media.links``) moved under the link's
token, where ``views.sharing.shared_image`` checks that each image belongs to the shared
answer before the image archive streams it.
"""

from __future__ import annotations

from django.urls import reverse

from sonarweb.media.links import TEAM_PREFIX


def shared_image_url(token: str, sha256: str) -> str:
    return reverse("shared_image", kwargs={"token": token, "sha256": sha256})


def for_share(html: str, token: str) -> str:
    """Rendered answer HTML with its image addresses under the share link's token.

    Only attribute values that start with the team prefix change; the fragment is sanitized
    HTML whose attributes are always double-quoted.
    """
    # The address of an image under the token, less its name: "/s/<token>/images/".
    shared = shared_image_url(token, "0" * 64).removesuffix(f"{'0' * 64}.webp")
    return html.replace(f'src="{TEAM_PREFIX}', f'src="{shared}').replace(
        f'href="{TEAM_PREFIX}', f'href="{shared}'
    )
