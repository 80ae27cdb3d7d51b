"""Programmatic access: API tokens (``sw_…``, made in Settings) and the JSON API under
``/api/v1/`` (django-ninja). See docs/api.md."""
