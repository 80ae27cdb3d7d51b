"""/r/<slug>/cancel/: ask Perplexity to cancel a running Agent run, after a confirmation.

The member who added a run, and staff, may cancel it; other members get 403 and nothing is
sent. GET is the confirmation page (a plain form, so it works without JavaScript; with it the
permalink asks in a dialog and posts here directly). POST sends ``POST /v1/agent/{id}/cancel``
once, with the key of the member who added the run: that key owns it upstream.

Cancelling is asynchronous upstream: the acknowledgement says ``cancelling``, polls show the
run in progress a little longer, then ``cancelled`` with its partial output, which the
refresher archives. Until then ``cancel_requested_at`` makes the page say "Cancelling…", and
it is also what stops a second cancel: the row is claimed for the call with a conditional
update, so two posts (a double click, two members) send one call. A call that fails leaves
nothing recorded, so the member can try again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.views.decorators.http import require_http_methods

from sonarweb.accounts.models import AuditAction
from sonarweb.accounts.views.access import may_manage
from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.documents import can_cancel
from sonarweb.perplexity.payload import FINISHED_STATUSES

from .. import audit
from ..following.polling import request_early_poll
from ..keys.upstream import Busy, KeyUnreadable, interactive_client, note_failure
from ..models import ApiKey, AppState, TrackedRequest
from .messages_upstream import try_again

log = logging.getLogger("sonarweb.cancel")

FINISHED = "This run had already finished; the page shows its final state."
ALREADY = (
    "Cancelling this run was already asked for; the page says “Cancelling…” until "
    "Perplexity has stopped it."
)
TITLE_CHARS = 80
SENT = (
    "Perplexity was asked to cancel this run. It stops within a few polls, and whatever it has "
    "written by then is kept here."
)


@require_http_methods(["GET", "HEAD", "POST"])
def cancel_run(request: HttpRequest, slug: str) -> HttpResponse:
    tracked = get_object_or_404(TrackedRequest.objects.select_related("added_by"), slug=slug)
    if not may_manage(request.user, tracked):
        raise PermissionDenied("Only staff and the member who added a run can cancel it.")
    if refusal := _refusal(tracked):
        messages.info(request, refusal)
    elif request.method != "POST":
        title = Truncator(tracked.display_title).chars(TITLE_CHARS)
        context = {
            "heading": "Cancel this research run?",
            "sentence": (
                f"Perplexity stops “{title}” within a few polls. Whatever it has written by "
                "then is kept here; the rest of the research is not done."
            ),
            "action": reverse("cancel_run", args=[tracked.slug]),
            "fields": [],
            "button": "Cancel the run",
            "cancel_url": tracked.get_absolute_url(),
            "back_label": "Keep it running",
        }
        return render(request, "tracker/confirm.html", context)
    else:
        result = cancel_as(request.user, tracked)
        getattr(messages, result.level)(request, result.sentence)
    return HttpResponseRedirect(tracked.get_absolute_url(), status=303)


def refusal_code(tracked: TrackedRequest) -> str:
    """Why this row cannot be cancelled now, as a word ("" when it can): ``not_cancellable``,
    ``finished`` or ``already``."""
    if not can_cancel(tracked.request_id):
        return "not_cancellable"
    if tracked.is_finished:
        return "finished"
    if tracked.cancel_requested_at is not None:
        return "already"
    if tracked.state in (AppState.NOT_FOUND, AppState.RETIRED, AppState.UNCONFIRMED):
        return "not_cancellable"
    return ""


def _refusal(tracked: TrackedRequest) -> str:
    """Why this row cannot be cancelled now ("" when it can)."""
    code = refusal_code(tracked)
    if code != "not_cancellable":
        return {"finished": FINISHED, "already": ALREADY}.get(code, "")
    if not can_cancel(tracked.request_id):
        return "Only Agent API runs can be cancelled; the Sonar API had no way to cancel a job."
    return f"This run cannot be cancelled from here. {tracked.status_sentence}"


def _owner(user: Any, tracked: TrackedRequest) -> str:
    """Whose key owns the run, as the sentence names them."""
    if tracked.added_by_id == user.pk:
        return "your"
    if tracked.added_by is None:
        return "its (removed) member's"
    return f"{tracked.added_by.get_username()}'s"


def _usable_key(user: Any, tracked: TrackedRequest) -> tuple[ApiKey | None, str]:
    """The key of the member who added the run, or why there is none to cancel it with."""
    if tracked.added_by_id is None:
        return None, (
            "Only the API key that started this run can cancel it, and the member who added "
            "it has been removed, so it cannot be cancelled from here."
        )
    key = ApiKey.objects.filter(user_id=tracked.added_by_id).first()
    owner = _owner(user, tracked)
    if key is None:
        return None, (
            f"Only the API key that started this run can cancel it, and {owner} API key is "
            "no longer saved, so it cannot be cancelled from here."
        )
    if key.is_invalid:
        return None, (
            f"Perplexity rejected {owner} API key earlier, and only that key can cancel this "
            "run: replace it in Settings, then cancel again."
        )
    return key, ""


def _claim(tracked: TrackedRequest) -> datetime | None:
    """Record the cancel before it is sent, if nobody has: one call however many posts."""
    now = timezone.now()
    claimed = (
        TrackedRequest.objects.filter(pk=tracked.pk, cancel_requested_at__isnull=True)
        .exclude(status__in=FINISHED_STATUSES)
        .update(cancel_requested_at=now, updated=now)
    )
    return now if claimed else None


def _release(tracked: TrackedRequest, claimed_at: datetime) -> None:
    """The cancel was not accepted: nothing stays recorded, so it can be asked for again."""
    TrackedRequest.objects.filter(pk=tracked.pk, cancel_requested_at=claimed_at).update(
        cancel_requested_at=None, updated=timezone.now()
    )


@dataclass(frozen=True)
class CancelResult:
    """What a cancel did: ``sent`` (upstream accepted it), ``refused`` (nothing sent:
    ``refusal`` says why, as refusal_code words), ``no_key`` (nothing sent: the adder's key
    is missing or rejected) or ``failed`` (upstream did not accept it: ``error``). The
    sentence says it to a member."""

    outcome: Literal["sent", "refused", "no_key", "failed"]
    sentence: str
    refusal: str = ""
    error: upstream.UpstreamError | None = None

    @property
    def level(self) -> str:
        """The message level a page shows the sentence with."""
        return {"sent": "success", "refused": "info"}.get(self.outcome, "error")


def cancel_as(user: Any, tracked: TrackedRequest) -> CancelResult:
    """Ask upstream, once, to cancel ``tracked`` on behalf of ``user`` (who may manage it),
    with the key of the member who added it. Used by this page and by the JSON API."""
    if code := refusal_code(tracked):
        return CancelResult("refused", _refusal(tracked), refusal=code)
    key, no_key = _usable_key(user, tracked)
    if key is None:
        return CancelResult("no_key", no_key)
    claimed_at = _claim(tracked)
    if claimed_at is None:
        # Another post got here first, or the run finished meanwhile.
        tracked.refresh_from_db()
        return CancelResult(
            "refused", _refusal(tracked) or ALREADY, refusal=refusal_code(tracked) or "already"
        )
    try:
        with interactive_client(key) as api:
            api.cancel_run(tracked.request_id)
    except upstream.UpstreamError as exc:
        _release(tracked, claimed_at)
        return CancelResult("failed", _failure(user, tracked, key, exc), error=exc)
    request_early_poll([tracked.pk])
    audit.record(user, AuditAction.CANCELLED, tracked=tracked)
    log.info("user_id=%s cancelled request_id=%s", user.pk, tracked.request_id)
    return CancelResult("sent", SENT)


def _failure(user: Any, tracked: TrackedRequest, key: ApiKey, exc: upstream.UpstreamError) -> str:
    """What a failed cancel did (and did not do), as a sentence; polls early where upstream's
    answer says the run's state has changed or may have."""
    if isinstance(exc, upstream.Rejected):
        # A 400: the run is already terminal (upstream also answers it for unknown ids).
        request_early_poll([tracked.pk])
        return FINISHED
    if isinstance(exc, KeyUnreadable):
        note_failure(key, exc)
        return f"{exc.note} The run was not cancelled."
    if isinstance(exc, upstream.Unauthorized):
        note_failure(key, exc)
        return (
            f"Perplexity rejected {_owner(user, tracked)} API key (401), so the run was not "
            "cancelled. Replace the key in Settings, then cancel again."
        )
    if isinstance(exc, upstream.RateLimited):
        return (
            f"Perplexity is rate-limiting {_owner(user, tracked)} API key, so the run was not "
            f"cancelled. {try_again(exc)}"
        )
    if isinstance(exc, Busy):
        return f"{exc.note} The run was not cancelled."
    if isinstance(exc, upstream.NotFound):
        request_early_poll([tracked.pk])
        return "Perplexity does not know this run (404), so there was nothing to cancel."
    request_early_poll([tracked.pk])
    return (
        f"{exc.note} The cancel may not have reached Perplexity: if the page still shows the "
        "run in progress in a minute, cancel again."
    )
