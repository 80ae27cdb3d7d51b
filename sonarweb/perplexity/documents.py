"""A stored or uploaded answer document, whichever protocol wrote it.

Archives keep upstream's JSON exactly as received, and people bring saved JSON in: this tells
an Agent Response from a Sonar job by its shape and reads it into the shared ``Job``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import agent, sonar
from .payload import Collectors, Job, PayloadError, loads_streamed


def parse_document(raw: Any) -> Job:
    if agent.looks_like_response(raw):
        return agent.parse_response(raw)
    return sonar.parse_job(raw)


# The sources of either protocol, read as the text is parsed: each path belongs to one
# protocol, and each parser reads only its own.
SOURCE_ARRAYS: Collectors = {**agent.SOURCE_ARRAYS, **sonar.SOURCE_ARRAYS}


def load_json(text: str) -> Any:
    """A job's or run's JSON, its sources read as they are parsed (``payload.loads_streamed``)."""
    return loads_streamed(text, SOURCE_ARRAYS)


def loads_document(text: str) -> Job:
    """Parse stored raw JSON text of a job or run; PayloadError if it is neither."""
    try:
        raw = load_json(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError("The stored answer is not JSON.") from exc
    return parse_document(raw)


# Sonar kept jobs about 7 days (as people observed; never documented). How long the Agent API
# keeps a run is undocumented: no date is promised for it.
SONAR_RETENTION = timedelta(days=7)


def retention_of(request_id: str) -> timedelta | None:
    """How long upstream keeps this job, where that is known."""
    return None if agent.is_run_id(request_id) else SONAR_RETENTION


def can_cancel(request_id: str) -> bool:
    """Whether upstream can be asked to cancel this job (Agent runs can; Sonar had no cancel)."""
    return agent.is_run_id(request_id)


def listed_by_key(request_id: str) -> bool:
    """Whether a key's job list covers this id (Sonar's did; the Agent API has no list)."""
    return not agent.is_run_id(request_id)
