"""Refuse to start on a bad setting, with the settings' one sentence and no traceback."""

from __future__ import annotations

import os


def require_valid_settings() -> None:
    """Load the settings now; on a configuration error, exit with its message.

    The messages name the variable and never its value (see settings.py), so they are safe
    to print. A traceback would add nothing for the person reading it.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sonarweb.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018 - touching a setting loads the module
    except ImproperlyConfigured as exc:
        raise SystemExit(f"sonarweb cannot start: {exc}") from None
