"""The image archive's settings: storage from the environment, and the deploy check."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from sonarweb.media.checks import private_image_fetching
from sonarweb.media.conf import media_storage, settings_from_env


def test_images_are_kept_under_the_data_directory_by_default(settings):
    # Tests keep their images in a temporary directory; the configured default is this:
    config = media_storage(settings.DATA_DIR, {})
    assert config["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert Path(config["OPTIONS"]["location"]) == settings.DATA_DIR / "media"
    assert isinstance(storages["media"], FileSystemStorage)


def test_an_s3_bucket_from_the_environment():
    config = media_storage(
        Path("/data"),
        {
            "SONARWEB_MEDIA_S3_BUCKET": "team-archive",
            "SONARWEB_MEDIA_S3_ENDPOINT_URL": "https://s3.example.net",
            "SONARWEB_MEDIA_S3_REGION": "eu-central-1",
        },
    )
    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    options = config["OPTIONS"]
    assert options["bucket_name"] == "team-archive"
    assert options["endpoint_url"] == "https://s3.example.net"
    assert options["region_name"] == "eu-central-1"
    # Private objects: the app streams them through views that check access.
    assert options["default_acl"] is None and options["querystring_auth"] is True


def test_the_s3_storage_is_built_from_those_options():
    """What the image with requirements-s3.lock runs: django-storages' S3 backend, configured
    without touching the network until an image is read or written."""
    from storages.backends.s3 import S3Storage

    config = media_storage(
        Path("/data"),
        {"SONARWEB_MEDIA_S3_BUCKET": "team-archive", "SONARWEB_MEDIA_S3_PREFIX": "/images/"},
    )
    storage = S3Storage(**config["OPTIONS"])
    assert storage.bucket_name == "team-archive"
    assert storage.location == "images"
    assert storage.default_acl is None and storage.file_overwrite is True


def test_an_s3_bucket_without_its_libraries_is_refused_with_a_sentence(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "boto3" else real(name, *a)
    )
    with pytest.raises(ImproperlyConfigured, match=r"requirements-s3\.lock"):
        media_storage(Path("/data"), {"SONARWEB_MEDIA_S3_BUCKET": "team-archive"})


def test_limits_from_the_environment():
    values = settings_from_env(
        {"SONARWEB_IMAGE_MAX_BYTES": "2048", "SONARWEB_IMAGES_ALLOW_PRIVATE": "1",
         "SONARWEB_IMAGE_TIMEOUT": "7.5"}
    )  # fmt: skip
    assert values["SONARWEB_IMAGE_MAX_BYTES"] == 2048
    assert values["SONARWEB_IMAGES_ALLOW_PRIVATE"] is True
    assert values["SONARWEB_IMAGE_TIMEOUT"] == 7.5
    assert settings_from_env({})["SONARWEB_IMAGE_MAX_BYTES"] == 10 * 1024 * 1024
    assert settings_from_env({})["SONARWEB_IMAGES_ALLOW_PRIVATE"] is False
    with pytest.raises(ImproperlyConfigured, match="SONARWEB_IMAGE_MAX_BYTES"):
        settings_from_env({"SONARWEB_IMAGE_MAX_BYTES": "lots"})


def _deploy_check_output() -> str:
    # Test settings are not production settings: other deploy warnings fire too.
    try:
        call_command("check", "--deploy", "--fail-level", "WARNING", stdout=StringIO(),
                     stderr=StringIO())  # fmt: skip
    except SystemCheckError as error:
        return str(error)
    return ""


def test_check_deploy_warns_while_private_addresses_are_allowed(settings):
    settings.SONARWEB_IMAGES_ALLOW_PRIVATE = False
    assert private_image_fetching() == []
    assert "sonarweb.media.W001" not in _deploy_check_output()
    settings.SONARWEB_IMAGES_ALLOW_PRIVATE = True
    [warning] = private_image_fetching()
    assert warning.id == "sonarweb.media.W001"
    assert "sonarweb.media.W001" in _deploy_check_output()
