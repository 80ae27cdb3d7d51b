from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_search_triggers(using: str = "default", **kwargs: Any) -> None:
    from django.db import connections

    from .search.schema import ensure_triggers

    ensure_triggers(connections[using])


class TrackerConfig(AppConfig):
    name = "sonarweb.tracker"
    label = "tracker"
    verbose_name = "Tracked research"

    def ready(self) -> None:
        # SQLite loses a table's triggers when a migration rebuilds the table; put the
        # search index's back after every migrate.
        post_migrate.connect(_ensure_search_triggers, sender=self)
