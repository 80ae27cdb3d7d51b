"""The local archive of answers: the finished document in, sanitized HTML and Markdown out.

A finished job is archived once, by the background refresher: the document exactly as
received, and its rendering (the page's HTML fragment and answer.md's body), all in one
transaction together with the row's final status. Request threads only read what is stored.
When ``RENDER_VERSION`` changes, ``rerender_stale`` renders old archives again in the
background; until then pages show the HTML they have.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from sonarweb.answers.content import first_heading
from sonarweb.answers.export import render_plain_markdown
from sonarweb.answers.images import ImageMap
from sonarweb.answers.render import RENDER_VERSION, render_completion
from sonarweb.answers.sources import build_sources
from sonarweb.media import background as media
from sonarweb.perplexity.documents import loads_document
from sonarweb.perplexity.payload import ANSWERED_STATUSES, Completion, Job, PayloadError

from .. import signals
from ..fitting import fit
from ..models import AnswerArchive, TrackedRequest

log = logging.getLogger("sonarweb.archive")

RENDER_ERROR_CHARS = AnswerArchive._meta.get_field("render_error").max_length or 300


@dataclass(frozen=True)
class Rendering:
    html: str
    markdown: str
    error: str = ""


def render(
    completion: Completion | None, request_id: str, images: ImageMap | None = None
) -> Rendering:
    """Both renderings of an answer, with the archive's copies of its images. A renderer bug
    never loses the archive: the raw JSON is stored anyway and stays downloadable, and the
    page says the answer could not be shown."""
    try:
        completion = completion or Completion()
        # Numbered once for both: with many sources, numbering them is a pass over them all.
        sources = build_sources(completion)
        html = render_completion(
            completion, followup_url=reverse("new_research"), images=images, sources=sources
        )
        markdown = render_plain_markdown(completion, sources)
    except Exception as exc:
        log.exception("rendering the answer of request_id=%s failed", request_id)
        return Rendering("", "", f"{type(exc).__name__}: the answer could not be rendered.")
    return Rendering(html, markdown)


# Text hashed and measured a slice at a time: encoding a 30 MB answer whole is 30 MB more.
DIGEST_CHARS = 1 << 20


def digest(raw_text: str) -> tuple[str, int]:
    """SHA-256 and size in bytes of the text's UTF-8."""
    sha = hashlib.sha256()
    size = 0
    for start in range(0, len(raw_text), DIGEST_CHARS):
        data = raw_text[start : start + DIGEST_CHARS].encode("utf-8")
        sha.update(data)
        size += len(data)
    return sha.hexdigest(), size


@dataclass(frozen=True)
class Prepared:
    """What archiving keeps of a finished job once it is rendered: the parsed answer (for an
    answer with a million sources, hundreds of MB) can go before the database write, which
    holds copies of the text."""

    status: str
    rendering: Rendering
    heading: str


def prepare(tracked: TrackedRequest, job: Job) -> Prepared:
    """Render a finished job and note its images, ahead of ``store_prepared``."""
    if job.status in ANSWERED_STATUSES:
        # Its images are fetched in the background; until then the page says so.
        media.record(tracked.pk, job.response)
        rendering = render(job.response, tracked.request_id, media.image_copies(tracked.pk))
    else:
        rendering = Rendering("", "")
    heading = first_heading(job.response.content) if job.response else ""
    return Prepared(status=job.status, rendering=rendering, heading=heading)


def archive_job(tracked: TrackedRequest, job: Job, raw_text: str, fields: dict[str, Any]) -> bool:
    """Store a finished job's document and rendering, and the row's final fields, at once.

    Returns False when the row already holds a completed archive: that is never replaced,
    whatever a later call answers.
    """
    return store_prepared(tracked, prepare(tracked, job), raw_text, fields)


def store_prepared(
    tracked: TrackedRequest, prepared: Prepared, raw_text: str, fields: dict[str, Any]
) -> bool:
    """``archive_job``'s write, once the job is rendered (``prepare``)."""
    now = timezone.now()
    rendering = prepared.rendering
    sha256, size = digest(raw_text)
    with transaction.atomic():
        if AnswerArchive.objects.filter(tracked_id=tracked.pk).exists():
            return False
        AnswerArchive.objects.create(
            tracked_id=tracked.pk,
            raw_json=raw_text,
            sha256=sha256,
            size=size,
            archived_at=now,
            rendered_html=rendering.html,
            markdown=rendering.markdown,
            render_version=RENDER_VERSION,
            rendered_at=now,
            render_error=rendering.error[:RENDER_ERROR_CHARS],
        )
        TrackedRequest.objects.filter(pk=tracked.pk).update(
            **fit(
                TrackedRequest,
                {**fields, "archived_at": now, "claimed_by": "", "heading": prepared.heading},
            ),
            updated=now,
        )
        # Completion webhooks (their receiver): the outbox rows commit, or roll back, with the
        # final status.
        signals.request_finished.send(
            sender=TrackedRequest,
            tracked_id=tracked.pk,
            status=str(fields.get("status") or prepared.status),
            at=now,
        )
    tracked.refresh_from_db()
    return True


def stored_job(archive: AnswerArchive) -> Job | None:
    try:
        return loads_document(archive.raw_json)
    except PayloadError:
        log.warning("stored answer of tracked request %s cannot be parsed", archive.tracked_id)
        return None


def rerender(archive: AnswerArchive, request_id: str) -> None:
    """Render an archived answer again with the current renderer (a background task)."""
    job = stored_job(archive)
    if job is None:
        # Kept and downloadable as it is; there is nothing to show or to export as Markdown.
        rendering = Rendering("", "", "The archived JSON cannot be parsed.")
    else:
        rendering = render(job.response, request_id, media.image_copies(archive.pk))
    now = timezone.now()
    with transaction.atomic():
        AnswerArchive.objects.filter(pk=archive.pk).update(
            rendered_html=rendering.html,
            markdown=rendering.markdown,
            render_version=RENDER_VERSION,
            rendered_at=now,
            render_error=rendering.error[:RENDER_ERROR_CHARS],
        )
        # The permalink's ETag follows the row's ``updated``.
        heading = first_heading(job.response.content) if job and job.response else ""
        TrackedRequest.objects.filter(pk=archive.pk).update(updated=now, heading=heading)


def stale_archives(limit: int) -> list[int]:
    """Archives of completed answers rendered by an older renderer, oldest first."""
    return list(
        AnswerArchive.objects.exclude(render_version=RENDER_VERSION)
        .filter(tracked__status__in=ANSWERED_STATUSES)
        .order_by("archived_at")
        .values_list("pk", flat=True)[:limit]
    )


def rerender_many(pks: list[int]) -> int:
    """Render these archives again (their images changed, say); returns how many."""
    archives = AnswerArchive.objects.select_related("tracked").filter(pk__in=pks)
    for archive in archives:
        rerender(archive, archive.tracked.request_id)
    return len(archives)


def rerender_stale(limit: int = 5) -> int:
    """Bring up to ``limit`` stale renderings up to date; returns how many."""
    done = 0
    for pk in stale_archives(limit):
        archive = AnswerArchive.objects.select_related("tracked").filter(pk=pk).first()
        if archive is None or archive.render_version == RENDER_VERSION:
            continue
        rerender(archive, archive.tracked.request_id)
        done += 1
    return done
