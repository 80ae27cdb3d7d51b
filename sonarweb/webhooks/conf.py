"""The webhooks' settings, and the site's own address for the links in events."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings


def private_opt_in_permitted() -> bool:
    """Whether staff may let an endpoint reach loopback and private addresses
    (``SONARWEB_WEBHOOKS_ALLOW_PRIVATE``, on unless set to 0)."""
    return bool(getattr(settings, "SONARWEB_WEBHOOKS_ALLOW_PRIVATE", True))


def base_url() -> str:
    """The site's address, for the absolute links an event carries (no request to ask).

    ``SONARWEB_BASE_URL`` when set; else the first origin in ``DJANGO_CSRF_TRUSTED_ORIGINS``
    (a deployment names its https:// address there); else the first allowed host.
    """
    configured = str(getattr(settings, "SONARWEB_BASE_URL", "") or "").strip()
    if configured:
        return configured.rstrip("/")
    for origin in getattr(settings, "CSRF_TRUSTED_ORIGINS", []):
        parts = urlsplit(origin)
        if parts.scheme and parts.netloc and "*" not in parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    plain = settings.DEBUG or getattr(settings, "INSECURE_HTTP", False)
    scheme = "http" if plain else "https"
    for host in settings.ALLOWED_HOSTS:
        if host and host != "*":
            return f"{scheme}://{host.removeprefix('.')}"
    return f"{scheme}://localhost"


class SiteAddress:
    """Stands in for the request the API's serializer asks for absolute URLs."""

    def __init__(self) -> None:
        self.base = base_url().rstrip("/")

    def build_absolute_uri(self, location: str | None = None) -> str:
        return self.base + (location or "/")
