"""The image archive's settings, and the ``STORAGES["media"]`` entry built from the environment.

Imported by ``sonarweb.settings``, so it imports nothing from Django models or apps.

Object storage: set ``SONARWEB_MEDIA_S3_BUCKET`` (and install ``requirements-s3.lock``, which
adds django-storages and boto3) to keep the images in an S3-compatible bucket through
django-storages instead of files under the data directory. ``SONARWEB_MEDIA_S3_ENDPOINT_URL``
points at a non-AWS service (MinIO, Ceph, R2, ...), ``SONARWEB_MEDIA_S3_REGION`` names the
region and ``SONARWEB_MEDIA_S3_PREFIX`` the key prefix. Credentials come from boto3's own
chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a shared credentials file, or an
instance role. The bucket can stay private: the app streams images through its own views,
which check who may see them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

MEGABYTE = 1024 * 1024
# What every stored rendition is (decode.py writes them, views serve them).
RENDITION_MIME = "image/webp"
RENDITION_EXTENSION = "webp"

DEFAULTS: dict[str, Any] = {
    # Loopback and private addresses are refused unless this is on (demo and tests only).
    "SONARWEB_IMAGES_ALLOW_PRIVATE": False,
    # Bytes one image may have, counted as they arrive.
    "SONARWEB_IMAGE_MAX_BYTES": 10 * MEGABYTE,
    # Pixels one image may declare; bigger ones are refused before they are decoded.
    "SONARWEB_IMAGE_MAX_PIXELS": 40_000_000,
    # Pixels one image may be decoded at: what decoding costs (4 bytes a pixel, 64 MB for
    # 16 million). A JPEG is decoded at 1/2 to 1/8 scale, so a 40 MP photo passes; PNG, WebP,
    # GIF and BMP are decoded at full size and are refused beyond this.
    "SONARWEB_IMAGE_MAX_DECODED_PIXELS": 16_000_000,
    # Seconds: connect, and everything (connect, headers, body) for one image.
    "SONARWEB_IMAGE_CONNECT_TIMEOUT": 5.0,
    "SONARWEB_IMAGE_TIMEOUT": 20.0,
    # Seconds one answer's images may take in one pass; what is left waits for the next.
    "SONARWEB_IMAGES_ANSWER_SECONDS": 120.0,
}


def setting(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, name, DEFAULTS[name])


def media_storage(data_dir: Path, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The ``STORAGES["media"]`` entry: files under ``data_dir/media``, or an S3 bucket."""
    bucket = environ.get("SONARWEB_MEDIA_S3_BUCKET", "").strip()
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": str(data_dir / "media"),
                # Served by the app's own views, never by URL: there is no public base URL.
                "base_url": "/images/",
                # Names are content hashes: a second writer of a name writes the same bytes.
                "allow_overwrite": True,
                "file_permissions_mode": 0o640,
                "directory_permissions_mode": 0o750,
            },
        }
    missing = [name for name in ("storages", "boto3") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImproperlyConfigured(
            "SONARWEB_MEDIA_S3_BUCKET is set, but django-storages and boto3 are not installed: "
            "install requirements-s3.lock (for the image, build it with "
            "SONARWEB_LOCK=requirements-s3.lock)."
        )
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": environ.get("SONARWEB_MEDIA_S3_PREFIX", "sonarweb-media").strip("/ "),
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": True,
    }
    for option, variable in (
        ("endpoint_url", "SONARWEB_MEDIA_S3_ENDPOINT_URL"),
        ("region_name", "SONARWEB_MEDIA_S3_REGION"),
    ):
        value = environ.get(variable, "").strip()
        if value:
            options[option] = value
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


def settings_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The SONARWEB_IMAGE* settings from the environment, with the defaults above."""
    values: dict[str, Any] = {}
    for name, default in DEFAULTS.items():
        raw = environ.get(name, "").strip()
        if not raw:
            values[name] = default
        elif isinstance(default, bool):
            values[name] = raw.lower() in ("1", "true", "yes", "on")
        else:
            try:
                values[name] = type(default)(raw)
            except ValueError as exc:
                raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from exc
    return values
