"""The local archive of answers: stored JSON in, stored sanitized HTML out.

Rendering happens once, when a request completes. ``RENDER_VERSION`` makes HTML
stored by an older renderer re-render lazily on its next view, so page views
normally do no markdown work at all.
"""

from __future__ import annotations

import logging

from sonarweb.answers.export import render_plain_markdown
from sonarweb.answers.render import RENDER_VERSION, render_completion
from sonarweb.perplexity.payload import Completion, Job, PayloadError, loads_job

from .models import TrackedRequest

log = logging.getLogger("sonarweb.archive")

FOLLOWUP_URL = "/new/"


def stored_job(tracked: TrackedRequest) -> Job | None:
    if not tracked.raw_json:
        return None
    try:
        return loads_job(tracked.raw_json)
    except PayloadError:
        log.warning("stored answer for request_id=%s cannot be parsed", tracked.request_id)
        return None


def stored_completion(tracked: TrackedRequest) -> Completion | None:
    job = stored_job(tracked)
    return job.response if job else None


def needs_render(tracked: TrackedRequest) -> bool:
    return tracked.has_answer and tracked.render_version != RENDER_VERSION


def render_stored(tracked: TrackedRequest) -> None:
    """Render the archived answer and store the HTML, if it is missing or stale."""
    if not needs_render(tracked):
        return
    completion = stored_completion(tracked)
    try:
        html = render_completion(completion or Completion(), followup_url=FOLLOWUP_URL)
        text = render_plain_markdown(completion or Completion())
    except Exception:
        # The raw JSON stays archived and downloadable; the page says the answer could not
        # be displayed. Recorded as done for this renderer, so views do not retry it.
        log.exception("rendering the answer of request_id=%s failed", tracked.request_id)
        html = text = ""
    TrackedRequest.objects.filter(pk=tracked.pk).update(
        rendered_html=html, render_version=RENDER_VERSION, answer_text=text
    )
    tracked.answer_text = text
    tracked.rendered_html = html
    tracked.render_version = RENDER_VERSION
