"""Start a new research job at Perplexity from a form, and track it."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import JobSummary

from ..fitting import fit
from ..forms import MAX_QUESTION_CHARS, NewResearchForm
from ..ids import InvalidRequestId, validate_request_id
from ..models import ApiKey, Origin, TrackedRequest, UpstreamStatus
from ..upstream import interactive_client, note_failure
from .access import key_of
from .messages_upstream import retry_seconds, try_again

log = logging.getLogger("sonarweb.research")


def _render(
    request: HttpRequest, form: NewResearchForm, key: ApiKey | None, status: int = 200
) -> HttpResponse:
    # Every answer re-renders the same idempotency key: a resubmit after an error or a timeout
    # must not start a second job if the first one did start upstream.
    return render(request, "tracker/new.html", {"form": form, "key": key}, status=status)


def upstream_idempotency_key(form_key: str, body: dict[str, object]) -> str:
    """The key sent upstream: the form's key plus what is asked.

    Resubmitting the same form unchanged (a double click, a retry after a timeout) gets the
    same job back; resubmitting it with an edited question after an error asks a new one.
    """
    digest = hashlib.sha256(f"{form_key}\n{json.dumps(body, sort_keys=True)}".encode()).hexdigest()
    return f"sonarweb-{digest[:40]}"


def _already_started(form_key: str) -> TrackedRequest | None:
    return (
        TrackedRequest.objects.filter(origin=Origin.STARTED, options__idempotency_key=form_key)
        .only("slug")
        .first()
    )


def _rate_limit_sentence(exc: upstream.RateLimited) -> str:
    return (
        "Perplexity is limiting how many jobs your API key can start: creating deep-research "
        f"jobs is limited to a few a minute per key. {try_again(exc)} Your question is kept below."
    )


def _error_for(exc: upstream.UpstreamError) -> tuple[str, int]:
    """A sentence for the form and the status code of the page that shows it."""
    if isinstance(exc, upstream.RateLimited):
        return _rate_limit_sentence(exc), 429
    if isinstance(exc, upstream.Unauthorized):
        return "Perplexity rejected your API key (401), so nothing was started.", 422
    if isinstance(exc, upstream.Rejected):
        details = "; ".join(exc.details) if exc.details else f"HTTP {exc.status}"
        return f"Perplexity rejected the request: {details}.", 422
    if isinstance(exc, upstream.BadPayload):
        return (
            "Perplexity answered with something that could not be read, so the job may or may "
            "not have started. Submitting this form again will not start a second one.",
            502,
        )
    return (
        f"{exc.note} Nothing was lost: submit again when it is reachable; the same form "
        "will not start the job twice.",
        503,
    )


def _track(
    request: HttpRequest, form: NewResearchForm, summary: JobSummary, form_key: str
) -> TrackedRequest:
    request_id = validate_request_id(summary.id)
    data = form.cleaned_data
    try:
        with transaction.atomic():
            # The job has started upstream by now: whatever upstream called its model, the row
            # must be written, or the job would run untracked.
            fields = fit(
                TrackedRequest,
                {
                    "question": data["question"],
                    "model": summary.model or data["model"],
                    "status": summary.status if summary.status in UpstreamStatus.values else "",
                },
            )
            return TrackedRequest.objects.create(
                request_id=request_id,
                added_by=request.user,
                origin=Origin.STARTED,
                options={**form.options(), "idempotency_key": form_key},
                upstream_created_at=summary.created_at,
                next_poll_at=timezone.now(),
                **fields,
            )
    except IntegrityError:
        # A concurrent submit of the same form got the same job from upstream and won.
        return TrackedRequest.objects.get(request_id=request_id)


def _start(request: HttpRequest, key: ApiKey | None) -> HttpResponse:
    form = NewResearchForm(request.POST)
    if not form.is_valid():
        return _render(request, form, key, status=422)
    form_key = form.cleaned_data["idempotency_key"]
    existing = _already_started(form_key)
    if existing is not None:
        messages.info(request, "This research was already started; here it is.")
        return HttpResponseRedirect(existing.get_absolute_url(), status=303)
    if key is None:
        form.add_error(None, "Add your Perplexity API key in Settings to start research.")
        return _render(request, form, key, status=422)
    if key.is_invalid:
        form.add_error(None, "Perplexity rejected your API key earlier; replace it in Settings.")
        return _render(request, form, key, status=422)
    body = form.upstream_request()
    try:
        with interactive_client(key) as api:
            summary, _ = api.create_job(
                body, idempotency_key=upstream_idempotency_key(form_key, body)
            )
        tracked = _track(request, form, summary, form_key)
    except upstream.UpstreamError as exc:
        if isinstance(exc, upstream.Unauthorized):
            # Only a 401 has key-wide consequences here: a 429 on create is the create
            # limit, and must not pause the polling of this key's running jobs.
            note_failure(key, exc)
        sentence, status = _error_for(exc)
        form.add_error(None, sentence)
        response = _render(request, form, key, status=status)
        if isinstance(exc, upstream.RateLimited) and (seconds := retry_seconds(exc)):
            response["Retry-After"] = str(seconds)
        return response
    except InvalidRequestId:
        log.warning("create answered an implausible job id for user_id=%s", request.user.pk)
        form.add_error(None, _error_for(upstream.BadPayload())[0])
        return _render(request, form, key, status=502)
    log.info(
        "user_id=%s started request_id=%s model=%s",
        request.user.pk,
        tracked.request_id,
        tracked.model,
    )
    # Tagged so the page drops it once the job has finished (base.html, watch.js): by then
    # "started" is old news. It promises nothing about live updates, which need JavaScript.
    messages.success(
        request,
        "Research started. It is archived when it finishes, even if you leave this page.",
        extra_tags="live-status",
    )
    return HttpResponseRedirect(tracked.get_absolute_url(), status=303)


@require_http_methods(["GET", "HEAD", "POST"])
def new_research(request: HttpRequest) -> HttpResponse:
    """The form that starts a job; ``?q=`` prefills the question (follow-up links use it)."""
    key = key_of(request)
    if request.method == "POST":
        return _start(request, key)
    initial: dict[str, object] = {"idempotency_key": str(uuid.uuid4())}
    question = request.GET.get("q", "").strip()
    if question:
        initial["question"] = question[:MAX_QUESTION_CHARS]
    return _render(request, NewResearchForm(initial=initial), key)
