"""Start a research run on the Agent API from a form, and track it.

Perplexity has no idempotency key for creates, and a second POST is a second paid run, so a
create is never retried and every submit is deduplicated before anything is sent. The rules
live in ``tracker/following/starting.py`` (the JSON API starts runs through it too); this view
says what happened in the page's words:

- the form carries a UUID made when it was rendered; a submit first reserves a row named
  ``starting-<uuid>`` in its own transaction, so a second submit of the same form (a double
  click, two tabs, a resubmit after a timeout) finds that row and is sent to its page;
- a member starts one run at a time: while one of their starts waits for Perplexity's
  answer, another form answers 429 at once rather than queueing behind it;
- a start that fails for certain (a 4xx answer, a refused connection, no free slot) deletes
  its reservation and shows the form again; one that may have reached Perplexity (a timeout,
  a 5xx, an unreadable answer) keeps the row as UNCONFIRMED, never polled and never sent
  again, and its page says to check the usage at Perplexity.
"""

from __future__ import annotations

import logging
import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from sonarweb.perplexity import client as upstream

from ..following.starting import (
    OneAtATime,
    Start,
    StartFailed,
    StartOptions,
    SubmittedTwice,
    start_research,
    started_with,
)
from ..forms import MAX_QUESTION_CHARS, NewResearchForm
from ..keys.upstream import Busy, KeyUnreadable, note_failure
from ..models import ApiKey
from .access import key_of
from .messages_upstream import retry_seconds, try_again

log = logging.getLogger("sonarweb.research")


def _render(
    request: HttpRequest, form: NewResearchForm, key: ApiKey | None, status: int = 200
) -> HttpResponse:
    # Every answer re-renders the same form key: a resubmit after an error or a timeout
    # finds the run if the first submit did start one.
    return render(request, "tracker/new.html", {"form": form, "key": key}, status=status)


def _failed(
    request: HttpRequest, form: NewResearchForm, key: ApiKey, exc: upstream.UpstreamError
) -> HttpResponse:
    """The form again, with why nothing was started (the reservation is gone by now)."""
    status = 422
    if isinstance(exc, KeyUnreadable):
        form.add_error(None, f"{exc.note} Nothing was started.")
    elif isinstance(exc, upstream.Unauthorized):
        # The key alert at the top says it, once, when the key is now marked rejected.
        note_failure(key, exc)
        if not key.is_invalid:
            form.add_error(None, "Perplexity rejected your API key, so nothing was started.")
    elif isinstance(exc, upstream.RateLimited):
        # A 429 on a create is about starting runs: it must not pause the polling of this
        # key's running ones, so there is no note_failure here.
        status = 429
        form.add_error(
            None,
            "Perplexity is limiting how fast your API key can start research, so nothing was "
            f"started. {try_again(exc)} Your question is kept below.",
        )
    elif isinstance(exc, upstream.Rejected):
        details = "; ".join(exc.details) if exc.details else f"HTTP {exc.status}"
        form.add_error(None, f"Perplexity rejected the request, so nothing was started: {details}")
    elif isinstance(exc, Busy):
        status = 503
        form.add_error(None, f"{exc.note} Nothing was sent, and your question is kept below.")
    elif isinstance(exc, upstream.NetworkError | upstream.UpstreamTimeout):
        status = 503
        form.add_error(None, f"{exc.note} Nothing was sent: submit again when it is reachable.")
    else:
        status = 502
        form.add_error(
            None, f"Perplexity refused the start (HTTP {exc.status}), so nothing was started."
        )
    response = _render(request, form, key, status=status)
    if isinstance(exc, upstream.RateLimited) and (seconds := retry_seconds(exc)):
        response["Retry-After"] = str(seconds)
    return response


def _answer(request: HttpRequest, start: Start) -> HttpResponse:
    """Where a start that has a row sends the member, with a sentence on what happened."""
    if start.kind == "already":
        messages.info(
            request,
            "This form was already submitted, so it was not sent again: here is that research.",
        )
    elif start.kind == "unconfirmed":
        messages.warning(
            request,
            "Perplexity's answer to the start did not arrive, so the research may or may not "
            "have started. It was not sent again.",
        )
    elif start.kind == "started":
        # Tagged so the page drops it once the run has finished (base.html, watch.js): by
        # then "started" is old news. It promises nothing about live updates, which need
        # JavaScript.
        messages.success(
            request,
            "Research started. It is archived when it finishes, even if you leave this page.",
            extra_tags="live-status",
        )
    # "tracked": the run is followed by the row its pasted id made; no sentence is needed.
    return HttpResponseRedirect(start.tracked.get_absolute_url(), status=303)


def _start(request: HttpRequest, key: ApiKey | None) -> HttpResponse:
    form = NewResearchForm(request.POST)
    if not form.is_valid():
        return _render(request, form, key, status=422)
    form_key = form.cleaned_data["idempotency_key"]
    if (existing := started_with(request.user.pk, form_key)) is not None:
        return _answer(request, Start(existing, "already"))
    if key is None or key.is_invalid:
        # The page's one message about the key says why and where to get one.
        return _render(request, form, key, status=422)
    try:
        start = start_research(request.user, key, StartOptions.from_form(form))
    except SubmittedTwice:
        form.add_error(None, "This form is being submitted twice at once; check it and try again.")
        return _render(request, form, key, status=409)
    except OneAtATime:
        form.add_error(
            None,
            "Another research you started is still waiting for Perplexity's answer. Starts run "
            "one at a time, so that a slow answer never turns into two paid runs: try again in "
            "a few seconds. Your question is kept below.",
        )
        response = _render(request, form, key, status=429)
        response["Retry-After"] = "5"
        return response
    except StartFailed as failure:
        return _failed(request, form, key, failure.error)
    return _answer(request, start)


@require_http_methods(["GET", "HEAD", "POST"])
def new_research(request: HttpRequest) -> HttpResponse:
    """The form that starts a run; ``?q=`` prefills the question (follow-up links use it)."""
    key = key_of(request)
    if request.method == "POST":
        return _start(request, key)
    initial: dict[str, object] = {"idempotency_key": str(uuid.uuid4())}
    question = request.GET.get("q", "").strip()
    if question:
        initial["question"] = question[:MAX_QUESTION_CHARS]
    return _render(request, NewResearchForm(initial=initial), key)
