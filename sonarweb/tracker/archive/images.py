"""Where the requests meet the image archive (``sonarweb.media``, a layer below).

The archive keeps the answers' images and portable bundles by answer id and knows nothing of
requests; what needs a request is done here: which answers are due a bundle and what their
bundle says (from the answer's archive), which answers still exist when the media sweep asks,
and marking the rows changed when the archive reports that what a page shows changed (so the
permalink's ETag changes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from sonarweb.media import background as media
from sonarweb.media import cleanup
from sonarweb.media.models import AnswerBundle
from sonarweb.perplexity.payload import ANSWERED_STATUSES

from ..models import AnswerArchive, TrackedRequest

log = logging.getLogger("sonarweb.media")

# Rows changed per statement (SQLite limits the parameters of one query).
CHUNK = 500


def stale_bundles(limit: int) -> list[int]:
    """Completed archives whose images are settled and whose bundle is missing or older
    than their rendering."""
    unsettled = media.unsettled_images(OuterRef("tracked_id"))
    current = media.bundles_of(OuterRef("tracked_id"), OuterRef("rendered_at"))
    return list(
        AnswerArchive.objects.filter(
            tracked__status__in=ANSWERED_STATUSES, rendered_at__isnull=False
        )
        .exclude(rendered_html="")
        .filter(~Exists(unsettled), ~Exists(current))
        .order_by("archived_at")
        .values_list("tracked_id", flat=True)[:limit]
    )


def _facts(tracked: TrackedRequest, archive: AnswerArchive) -> list[tuple[str, str]]:
    facts = [("Request ID", tracked.request_id)]
    if tracked.model:
        facts.append(("Model", tracked.model))
    if tracked.completed_at:
        facts.append(("Completed", tracked.completed_at.strftime("%Y-%m-%d %H:%M UTC")))
    facts.append(("Content hash", f"sha256:{archive.sha256[:12]}"))
    return facts


def build_and_store(tracked_id: int) -> AnswerBundle | None:
    """Build the answer's .zip from its current rendering and keep it in the media storage;
    None when there is no rendering yet, or a stored image's file is missing."""
    archive = AnswerArchive.objects.select_related("tracked").filter(pk=tracked_id).first()
    if archive is None or archive.rendered_at is None:
        return None
    tracked = archive.tracked
    title = tracked.question or tracked.title or tracked.request_id
    bundle = media.store_bundle(
        tracked_id,
        archive.rendered_at,
        title=title,
        markdown=f"# {' '.join(title.split())}\n\n{archive.markdown}",
        raw_json=archive.raw_json,
        answer_html=archive.rendered_html,
        facts=_facts(tracked, archive),
        when=tracked.completed_at,
    )
    if bundle is not None:
        # The permalink links the bundle once it exists: a new ``updated``, a new ETag.
        TrackedRequest.objects.filter(pk=tracked_id).update(updated=timezone.now())
    return bundle


def build_due_bundles(limit: int = 2) -> int:
    built = 0
    for tracked_id in stale_bundles(limit):
        try:
            if build_and_store(tracked_id) is not None:
                built += 1
        except Exception:
            log.exception("building the archive bundle of tracked=%s failed", tracked_id)
    return built


def alive(tracked_ids: Iterable[int]) -> set[int]:
    """Which of these answers still exist (the media sweep takes the others' bundles)."""
    return set(TrackedRequest.objects.filter(pk__in=set(tracked_ids)).values_list("pk", flat=True))


def sweep_media(now: datetime | None = None, *, force: bool = False) -> cleanup.Swept | None:
    """The media sweep (``cleanup.sweep``), told which answers still exist."""
    return cleanup.sweep(now, force=force, alive=alive)


def on_answers_changed(sender: Any, tracked_ids: set[int], at: datetime, **kwargs: Any) -> None:
    """The archive says what these answers' pages show changed (``media.signals``)."""
    ids = sorted(tracked_ids)
    for start in range(0, len(ids), CHUNK):
        TrackedRequest.objects.filter(pk__in=ids[start : start + CHUNK]).update(updated=at)
