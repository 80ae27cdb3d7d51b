"""Start a research run on the Agent API from a form, and track it.

Perplexity has no idempotency key for creates, and a second POST is a second paid run, so a
create is never retried and every submit is deduplicated here, before anything is sent:

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
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from sonarweb.perplexity import agent
from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import Job

from ..fitting import fit
from ..forms import MAX_QUESTION_CHARS, NewResearchForm
from ..models import ApiKey, AppState, Origin, TrackedRequest, TrackedRequestQuerySet
from ..upstream import SLOT_WAIT_SECONDS, Busy, KeyUnreadable, interactive_client, note_failure
from .access import key_of
from .messages_upstream import retry_seconds, try_again

log = logging.getLogger("sonarweb.research")

# The id a start is tracked under until Perplexity names its run (tracker/ids.py allows it).
STARTING_PREFIX = "starting-"
# The note of a reservation whose create call is in flight; it changes when the call ends.
STARTING_NOTE = "Starting: waiting for Perplexity's answer to the start."
# A reservation younger than the interactive deadline plus this is taken to be in flight.
IN_FLIGHT_MARGIN_SECONDS = 10.0
# Connection failures that happen before a single byte of the request is sent.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _render(
    request: HttpRequest, form: NewResearchForm, key: ApiKey | None, status: int = 200
) -> HttpResponse:
    # Every answer re-renders the same form key: a resubmit after an error or a timeout
    # finds the run if the first submit did start one.
    return render(request, "tracker/new.html", {"form": form, "key": key}, status=status)


def _redirect(tracked: TrackedRequest) -> HttpResponseRedirect:
    url = reverse("request_detail", kwargs={"slug": tracked.slug})
    return HttpResponseRedirect(url, status=303)


def _of_form(user_id: int, form_key: str) -> TrackedRequestQuerySet:
    """The rows a member's submits of one form made (a form key is only ever theirs)."""
    return TrackedRequest.objects.filter(
        added_by_id=user_id, origin=Origin.STARTED, options__idempotency_key=form_key
    ).only("slug")


def _started_with(user_id: int, form_key: str) -> TrackedRequest | None:
    """The row a submit of this form reserved, whether its run started or not."""
    return (
        TrackedRequest.objects.only("slug")
        .filter(request_id=f"{STARTING_PREFIX}{form_key}")
        .first()
    ) or _of_form(user_id, form_key).first()


def _already_started(request: HttpRequest, tracked: TrackedRequest) -> HttpResponse:
    messages.info(
        request,
        "This form was already submitted, so it was not sent again: here is that research.",
    )
    return _redirect(tracked)


def in_flight_cutoff(now: datetime) -> datetime:
    """Reservations made after this may still be waiting for their create call."""
    deadline = float(settings.PERPLEXITY_INTERACTIVE_TIMEOUT) + SLOT_WAIT_SECONDS
    return now - timedelta(seconds=deadline + IN_FLIGHT_MARGIN_SECONDS)


def _starts_in_flight(user_id: int, now: datetime) -> TrackedRequestQuerySet:
    return TrackedRequest.objects.filter(
        added_by_id=user_id,
        request_id__startswith=STARTING_PREFIX,
        state=AppState.UNCONFIRMED,
        note=STARTING_NOTE,
        created__gte=in_flight_cutoff(now),
    )


def _reserve(request: HttpRequest, form: NewResearchForm) -> TrackedRequest | None:
    """The row this submit starts its run under, committed before anything is sent; None if
    a submit of the same form holds it."""
    data = form.cleaned_data
    form_key = data["idempotency_key"]
    fields = fit(
        TrackedRequest,
        {
            "request_id": f"{STARTING_PREFIX}{form_key}",
            "question": data["question"],
            "model": form.run_name(),
            "note": STARTING_NOTE,
        },
    )
    try:
        with transaction.atomic():
            return TrackedRequest.objects.create(
                added_by=request.user,
                origin=Origin.STARTED,
                options={**form.options(), "idempotency_key": form_key},
                status="",
                state=AppState.UNCONFIRMED,
                # Never polled: until Perplexity names the run there is nothing to ask about.
                next_poll_at=None,
                **fields,
            )
    except IntegrityError:
        return None


def _same_form_elsewhere(reserved: TrackedRequest) -> TrackedRequest | None:
    """Another row of the same form, found after reserving.

    The reservation's unique id stops a second submit of the same form only while that row
    is named ``starting-``: a submit that looked before the first row existed and reserved
    after it was renamed to its run's id is caught here.
    """
    form_key = reserved.options["idempotency_key"]
    return _of_form(reserved.added_by_id, form_key).exclude(pk=reserved.pk).first()


def _earlier_start_in_flight(reserved: TrackedRequest, user_id: int) -> bool:
    """Whether this member has an older start still waiting for its answer. Checked after
    reserving, so that of two forms submitted at once exactly the older one goes on."""
    return _starts_in_flight(user_id, timezone.now()).filter(pk__lt=reserved.pk).exists()


def _reserve_again(
    form_key: str, request: HttpRequest, form: NewResearchForm
) -> TrackedRequest | HttpResponse:
    """After a reservation clashed: the same form's row, or (if that submit has just given
    up and deleted it) a reservation of our own."""
    existing = _started_with(request.user.pk, form_key)
    if existing is not None:
        return _already_started(request, existing)
    reserved = _reserve(request, form)
    if reserved is not None:
        return reserved
    existing = _started_with(request.user.pk, form_key)
    if existing is not None:
        return _already_started(request, existing)
    form.add_error(None, "This form is being submitted twice at once; check it and try again.")
    return _render(request, form, key_of(request), status=409)


def _one_at_a_time(request: HttpRequest, form: NewResearchForm, key: ApiKey) -> HttpResponse:
    form.add_error(
        None,
        "Another research you started is still waiting for Perplexity's answer. Starts run "
        "one at a time, so that a slow answer never turns into two paid runs: try again in a "
        "few seconds. Your question is kept below.",
    )
    response = _render(request, form, key, status=429)
    response["Retry-After"] = "5"
    return response


def _definite_failure(exc: upstream.UpstreamError) -> bool:
    """Whether the create certainly started no run: a 4xx answer, or nothing was sent."""
    if isinstance(
        exc,
        Busy
        | upstream.Rejected
        | upstream.Unauthorized
        | upstream.RateLimited
        | upstream.NotFound
        | upstream.Retired,
    ):
        return True
    if isinstance(exc, upstream.NetworkError | upstream.UpstreamTimeout):
        return isinstance(exc.__cause__, _NOTHING_SENT)
    return False


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


def _unconfirmed(
    request: HttpRequest, reserved: TrackedRequest, exc: upstream.UpstreamError
) -> HttpResponse:
    """The create may have reached Perplexity: keep the row, unpolled, and say so."""
    note = f"No readable answer came to the start ({exc.note.rstrip('.')}). It was not sent again."
    TrackedRequest.objects.filter(pk=reserved.pk).update(
        **fit(TrackedRequest, {"note": note}), updated=timezone.now()
    )
    log.warning(
        "start by user_id=%s unconfirmed (%s); row %s kept", request.user.pk, exc, reserved.pk
    )
    messages.warning(
        request,
        "Perplexity's answer to the start did not arrive, so the research may or may not have "
        "started. It was not sent again.",
    )
    return _redirect(reserved)


def _started(
    request: HttpRequest, form: NewResearchForm, reserved: TrackedRequest, job: Job, sent: datetime
) -> HttpResponse:
    now = timezone.now()
    fields = fit(
        TrackedRequest,
        {
            "request_id": job.id,
            "status": job.status,
            "state": AppState.PENDING,
            "model": form.run_name(),
            "note": "",
        },
    )
    try:
        with transaction.atomic():
            TrackedRequest.objects.filter(pk=reserved.pk).update(
                # Perplexity's created_at moves between polls: the first one (or ours) stays.
                upstream_created_at=job.created_at or sent,
                next_poll_at=now,
                updated=now,
                **fields,
            )
    except IntegrityError:
        # The run is tracked already (its id was pasted meanwhile): that row follows it.
        reserved.delete()
        return _redirect(TrackedRequest.objects.only("slug").get(request_id=fields["request_id"]))
    log.info(
        "user_id=%s started request_id=%s model=%s",
        request.user.pk,
        job.id,
        fields["model"],
    )
    # Tagged so the page drops it once the run has finished (base.html, watch.js): by then
    # "started" is old news. It promises nothing about live updates, which need JavaScript.
    messages.success(
        request,
        "Research started. It is archived when it finishes, even if you leave this page.",
        extra_tags="live-status",
    )
    return _redirect(reserved)


def _start(request: HttpRequest, key: ApiKey | None) -> HttpResponse:
    form = NewResearchForm(request.POST)
    if not form.is_valid():
        return _render(request, form, key, status=422)
    form_key = form.cleaned_data["idempotency_key"]
    if (existing := _started_with(request.user.pk, form_key)) is not None:
        return _already_started(request, existing)
    if key is None or key.is_invalid:
        # The page's one message about the key says why and where to get one.
        return _render(request, form, key, status=422)
    body = form.create_body()
    reserved = _reserve(request, form) or _reserve_again(form_key, request, form)
    if isinstance(reserved, HttpResponse):
        return reserved
    if (other := _same_form_elsewhere(reserved)) is not None:
        reserved.delete()
        return _already_started(request, other)
    if _earlier_start_in_flight(reserved, request.user.pk):
        reserved.delete()
        return _one_at_a_time(request, form, key)
    sent = timezone.now()
    try:
        with interactive_client(key) as api:
            job, _ = api.create_run(body)
        if not agent.valid_run_id(job.id):
            raise upstream.BadPayload("Perplexity answered the start with an unusable run id.")
    except upstream.UpstreamError as exc:
        if _definite_failure(exc):
            reserved.delete()
            return _failed(request, form, key, exc)
        return _unconfirmed(request, reserved, exc)
    except Exception:
        # Whatever broke here, the body may have been sent: the row stays, unconfirmed.
        TrackedRequest.objects.filter(pk=reserved.pk).update(
            note="The start was interrupted. It was not sent again."
        )
        raise
    return _started(request, form, reserved, job, sent)


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
