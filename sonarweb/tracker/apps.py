from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_search_triggers(using: str = "default", **kwargs: Any) -> None:
    from django.db import connections

    from .archive.search.schema import ensure_triggers

    ensure_triggers(connections[using])


class TrackerConfig(AppConfig):
    name = "sonarweb.tracker"
    label = "tracker"
    verbose_name = "Tracked research"

    def ready(self) -> None:
        # SQLite loses a table's triggers when a migration rebuilds the table; put the
        # search index's back after every migrate.
        post_migrate.connect(_ensure_search_triggers, sender=self)
        # The accounts app, a layer below, says when a member is switched off or on; the
        # requests they added stop or resume here.
        from sonarweb.accounts.members import member_deactivated, member_reactivated

        from .members import on_member_deactivated, on_member_reactivated

        member_deactivated.connect(on_member_deactivated, dispatch_uid="tracker-deactivated")
        member_reactivated.connect(on_member_reactivated, dispatch_uid="tracker-reactivated")
        # The image archive, a layer below, says when what an answer's page shows changed.
        from sonarweb.media.signals import answers_changed

        from .archive.images import on_answers_changed

        answers_changed.connect(on_answers_changed, dispatch_uid="tracker-answers-changed")
