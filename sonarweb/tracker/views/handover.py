"""Ids belong to the key that can see them.

Request ids are unique across the team, so a member whose key cannot see a job can
"squat" its id: the row stops as Not found (or key rejected) and the job's owner, pasting
the same id, used to get that dead row. Now, when a member tracks an id whose polling
stopped that way, their own key is tried with one GET; if it sees the job, the row moves
to them and polling resumes, under the same permalink. Two keys that can both see a job
still share one row.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import FINISHED_STATUSES

from .. import audit
from ..keys.upstream import interactive_client, note_failure
from ..models import ApiKey, AppState, TrackedRequest
from .messages_upstream import try_again

log = logging.getLogger("sonarweb.handover")

# The states in which polling stopped because the adder's key could not see the job.
STOPPED_FOR_KEY = [AppState.NOT_FOUND, AppState.KEY_INVALID]
FINISHED = list(FINISHED_STATUSES)
ALREADY = "That request is already tracked; here it is."


def already_tracked(request: HttpRequest, existing: TrackedRequest) -> HttpResponse:
    """The answer to tracking an id the team already has: its permalink, after trying the
    member's key when the row stopped because the adder's key could not see the job."""
    tracked = (
        TrackedRequest.objects.select_related("added_by")
        .only("pk", "slug", "request_id", "state", "status", "added_by__username")
        .get(pk=existing.pk)
    )
    adder = tracked.added_by.get_username() if tracked.added_by else "a removed member"
    if tracked.state not in STOPPED_FOR_KEY or tracked.status in FINISHED:
        messages.info(request, ALREADY)
    elif (key := ApiKey.objects.filter(user_id=request.user.pk).first()) is None:
        messages.warning(
            request,
            f"{ALREADY} Its polling stopped because {adder}'s API key could not see it. "
            "Save your own API key in Settings and track it again to try yours.",
        )
    elif key.is_invalid:
        messages.warning(
            request,
            f"{ALREADY} Its polling stopped because {adder}'s API key could not see it, and "
            "Perplexity rejected your key too. Replace your key in Settings, then track it "
            "again.",
        )
    else:
        messages.add_message(request, *_try_key(request.user, key, tracked, adder))
    return HttpResponseRedirect(tracked.get_absolute_url(), status=303)


def _try_key(user: Any, key: ApiKey, tracked: TrackedRequest, adder: str) -> tuple[int, str]:
    """One interactive GET of the job with the member's key; a message that says how it
    went."""
    try:
        with interactive_client(key) as api:
            api.get_job(tracked.request_id)
    except upstream.NotFound:
        return messages.WARNING, (
            f"{ALREADY} Your API key cannot see this job either, so it stays with {adder}, stopped."
        )
    except upstream.Unauthorized as exc:
        note_failure(key, exc)
        return messages.ERROR, (
            "Perplexity rejected your API key, so it could not be tried on this request. "
            "Replace it in Settings, then track the request again."
        )
    except upstream.RateLimited as exc:
        note_failure(key, exc)
        return messages.WARNING, (
            f"Perplexity is rate-limiting your API key, so it could not be tried. {try_again(exc)}"
        )
    except upstream.UpstreamError as exc:
        return messages.WARNING, (
            f"Your API key could not be tried on this request: {exc.note} Try again in a moment."
        )
    if not move_to(user, tracked, adder):
        # Another member (or a poll) changed the row meanwhile; it is no longer stopped.
        return messages.INFO, ALREADY
    return messages.SUCCESS, (
        "Your API key can see this job, so the request is now yours and polling has "
        "resumed. The permalink is unchanged."
    )


def move_to(user: Any, tracked: TrackedRequest, adder: str) -> bool:
    """Hand a stopped row to the member whose key sees the job, and poll it now.

    Conditional on the row still being stopped, so two members doing this at once move
    it once.
    """
    now = timezone.now()
    moved = (
        TrackedRequest.objects.filter(pk=tracked.pk, state__in=STOPPED_FOR_KEY)
        .exclude(status__in=FINISHED)
        .update(
            added_by=user,
            state=AppState.PENDING,
            note=f"Moved to {user.get_username()}, whose API key can see this job; "
            "polling resumed.",
            poll_failures=0,
            not_found_strikes=0,
            next_poll_at=now,
            updated=now,
        )
    )
    if not moved:
        return False
    audit.record(
        user, "claimed", tracked=tracked, detail=f"from {adder}, whose API key could not see it"
    )
    log.info("request_id=%s moved to user_id=%s", tracked.request_id, user.pk)
    return True
