"""A tracked request as the API shows it: sonarweb's id and status vocabulary, never the
upstream id or anything that tells which Perplexity protocol runs it."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from sonarweb.answers.sources import build_sources
from sonarweb.perplexity.documents import loads_document
from sonarweb.perplexity.payload import PayloadError
from sonarweb.tracker.following.scheduler import MAX_BACKOFF_SECONDS
from sonarweb.tracker.models import AnswerArchive, TrackedRequest

from .sections import Section

MIN_POLL_SECONDS = 2


def poll_after_seconds(tracked: TrackedRequest, now: datetime | None = None) -> int | None:
    """While the request runs (unfinished, and sonarweb still asks upstream about it): how
    long until sonarweb's next look at it, plus one refresher pass. None otherwise."""
    if tracked.is_finished or tracked.next_poll_at is None:
        return None
    now = now or timezone.now()
    wait = (tracked.next_poll_at - now).total_seconds() + float(settings.SONARWEB_REFRESH_SECONDS)
    return int(min(max(math.ceil(wait), MIN_POLL_SECONDS), MAX_BACKOFF_SECONDS))


def title_of(tracked: TrackedRequest) -> str:
    """The request's name, never its upstream id (which would say which protocol runs it)."""
    return tracked.title or tracked.question or tracked.heading or ""


def request_out(request: HttpRequest, tracked: TrackedRequest) -> dict[str, Any]:
    answer_url = None
    if tracked.has_answer:
        answer_url = request.build_absolute_uri(reverse("api:get_answer", args=[tracked.slug]))
    return {
        "id": tracked.slug,
        "status": tracked.badge_status,
        "status_label": tracked.status_label,
        "status_sentence": tracked.status_sentence,
        "finished": tracked.is_finished,
        "cancelling": tracked.is_cancelling,
        "has_answer": tracked.has_answer,
        "title": title_of(tracked),
        "question": tracked.question,
        "model": tracked.model,
        "cost_usd": float(tracked.total_cost) if tracked.total_cost is not None else None,
        "error": tracked.error_message,
        "added_by": tracked.added_by.get_username() if tracked.added_by else None,
        "created_at": tracked.created,
        "started_at": tracked.started_at,
        "completed_at": tracked.completed_at,
        "failed_at": tracked.failed_at,
        "updated_at": tracked.updated,
        "permalink": request.build_absolute_uri(
            reverse("request_detail", kwargs={"slug": tracked.slug})
        ),
        "answer_url": answer_url,
        "poll_after_seconds": poll_after_seconds(tracked),
    }


def section_list(sections: list[Section]) -> list[dict[str, Any]]:
    return [
        {"index": s.index, "heading": s.heading, "level": s.level, "length": s.length}
        for s in sections
    ]


def sources_of(archive: AnswerArchive) -> list[dict[str, Any]]:
    """The answer's numbered sources; none when its stored document cannot be read."""
    try:
        job = loads_document(archive.raw_json)
    except (PayloadError, ValueError):
        return []
    if job.response is None:
        return []
    return [
        {"number": s.number, "title": s.title, "url": s.href, "domain": s.domain}
        for s in build_sources(job.response)
    ]
