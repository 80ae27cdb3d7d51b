"""``manage.py check --deploy`` warns while private addresses may be fetched."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register

from . import conf


@register(Tags.security, deploy=True)
def private_image_fetching(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not conf.setting("SONARWEB_IMAGES_ALLOW_PRIVATE"):
        return []
    return [
        Warning(
            "SONARWEB_IMAGES_ALLOW_PRIVATE is on: image URLs taken from answers may reach "
            "loopback and private-network addresses from this server.",
            hint="It is for the demo and tests, where the simulator serves images on "
            "loopback. Unset it in production.",
            id="sonarweb.media.W001",
        )
    ]
