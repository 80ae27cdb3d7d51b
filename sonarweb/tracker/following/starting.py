"""Starting a research run on the Agent API, once: what the New research page and the JSON API
(sonarweb/api) share.

Perplexity has no idempotency key for creates, and a second POST is a second paid run, so a
create is never retried and every start is deduplicated here, before anything is sent:

- each start carries a UUID (the form's key, made when the form was rendered; or the one the
  API's idempotency record holds). It first reserves a row named ``starting-<uuid>`` in its
  own transaction, so a second start with the same UUID (a double click, two tabs, a resubmit
  after a timeout) finds that row and is given it (``Start.kind == "already"``);
- a member starts one run at a time: while one of their starts waits for Perplexity's answer,
  another is refused at once (``OneAtATime``) rather than queueing behind it;
- a start that fails for certain (a 4xx answer, a refused connection, no free slot) deletes
  its reservation and raises ``StartFailed``; one that may have reached Perplexity (a timeout,
  a 5xx, an unreadable answer) keeps the row as UNCONFIRMED, never polled and never sent
  again (``Start.kind == "unconfirmed"``), and its page says to check the usage at Perplexity.

Callers say what happened in their own words (messages and pages, or problem documents);
nothing here writes a message or reads a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from sonarweb.perplexity import agent
from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.payload import Job

from ..fitting import fit
from ..keys.upstream import Busy, interactive_client
from ..models import ApiKey, AppState, Origin, TrackedRequest, TrackedRequestQuerySet

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from ..forms import NewResearchForm

log = logging.getLogger("sonarweb.research")

# The id a start is tracked under until Perplexity names its run (tracker/ids.py allows it).
STARTING_PREFIX = "starting-"
# The note of a reservation whose create call is in flight; it changes when the call ends.
STARTING_NOTE = "Starting: waiting for Perplexity's answer to the start."
# A reservation younger than the interactive deadline plus this is taken to be in flight.
IN_FLIGHT_MARGIN_SECONDS = 10.0
# Connection failures that happen before a single byte of the request is sent.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class StartOptions:
    """One start, as validated by NewResearchForm: its key, what is sent and what is kept."""

    form_key: str
    question: str
    run_name: str
    options: dict[str, object]
    body: dict[str, Any] = field(repr=False)

    @classmethod
    def from_form(cls, form: NewResearchForm, form_key: str | None = None) -> StartOptions:
        """The start a valid form describes; ``form_key`` replaces the form's own key."""
        data = form.cleaned_data
        return cls(
            form_key=form_key or data["idempotency_key"],
            question=data["question"],
            run_name=form.run_name(),
            options=form.options(),
            body=form.create_body(),
        )


@dataclass(frozen=True)
class Start:
    """A start that has a row: ``started`` (the run is named), ``already`` (a start with the
    same key made it earlier, so nothing was sent), ``tracked`` (the run started, and its id
    was tracked meanwhile by another row, which follows it), ``unconfirmed`` (the create may
    have reached Perplexity: the row is kept, unpolled, and ``error`` says what went wrong)."""

    tracked: TrackedRequest
    kind: Literal["started", "already", "tracked", "unconfirmed"]
    error: upstream.UpstreamError | None = None


class StartRefused(Exception):
    """Nothing was started, and nothing is reserved."""


class OneAtATime(StartRefused):
    """Another start of this member is still waiting for Perplexity's answer."""


class SubmittedTwice(StartRefused):
    """Two starts with the same key clashed and neither row could be found: try again."""


class StartFailed(StartRefused):
    """The create certainly started no run (``error`` says why); the reservation is gone."""

    def __init__(self, error: upstream.UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error


# -- finding and reserving --------------------------------------------------------------------


def of_form(user_id: int, form_key: str) -> TrackedRequestQuerySet:
    """The rows a member's starts with one key made (a key is only ever theirs)."""
    return TrackedRequest.objects.filter(
        added_by_id=user_id, origin=Origin.STARTED, options__idempotency_key=form_key
    ).only("slug")


def started_with(user_id: int, form_key: str) -> TrackedRequest | None:
    """The row a start with this key reserved, whether its run started or not."""
    return (
        TrackedRequest.objects.only("slug")
        .filter(request_id=f"{STARTING_PREFIX}{form_key}")
        .first()
    ) or of_form(user_id, form_key).first()


def in_flight_cutoff(now: datetime) -> datetime:
    """Reservations made after this may still be waiting for their create call."""
    return now - timedelta(seconds=in_flight_seconds())


def in_flight_seconds() -> float:
    """How long a reservation may wait for its create call at most, with a margin."""
    return float(settings.PERPLEXITY_INTERACTIVE_TIMEOUT) + IN_FLIGHT_MARGIN_SECONDS


def _reserve(user: AbstractBaseUser, start: StartOptions) -> TrackedRequest | None:
    """The row this start runs under, committed before anything is sent; None if a start
    with the same key holds it."""
    fields = fit(
        TrackedRequest,
        {
            "request_id": f"{STARTING_PREFIX}{start.form_key}",
            "question": start.question,
            "model": start.run_name,
            "note": STARTING_NOTE,
        },
    )
    try:
        with transaction.atomic():
            return TrackedRequest.objects.create(
                added_by=user,
                origin=Origin.STARTED,
                options={**start.options, "idempotency_key": start.form_key},
                status="",
                state=AppState.UNCONFIRMED,
                # Never polled: until Perplexity names the run there is nothing to ask about.
                next_poll_at=None,
                **fields,
            )
    except IntegrityError:
        return None


def _reserve_again(user: AbstractBaseUser, start: StartOptions) -> TrackedRequest | Start:
    """After a reservation clashed: the same key's row, or (if that start has just given up
    and deleted it) a reservation of our own."""
    existing = started_with(user.pk, start.form_key)
    if existing is not None:
        return Start(existing, "already")
    reserved = _reserve(user, start)
    if reserved is not None:
        return reserved
    existing = started_with(user.pk, start.form_key)
    if existing is not None:
        return Start(existing, "already")
    raise SubmittedTwice()


# -- the call ---------------------------------------------------------------------------------


def definite_failure(exc: upstream.UpstreamError) -> bool:
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


def _unconfirmed(
    user: AbstractBaseUser, reserved: TrackedRequest, exc: upstream.UpstreamError
) -> Start:
    """The create may have reached Perplexity: keep the row, unpolled, and say so."""
    note = f"No readable answer came to the start ({exc.note.rstrip('.')}). It was not sent again."
    TrackedRequest.objects.filter(pk=reserved.pk).update(
        **fit(TrackedRequest, {"note": note}), updated=timezone.now()
    )
    log.warning("start by user_id=%s unconfirmed (%s); row %s kept", user.pk, exc, reserved.pk)
    reserved.refresh_from_db()
    return Start(reserved, "unconfirmed", exc)


def _started(
    user: AbstractBaseUser, start: StartOptions, reserved: TrackedRequest, job: Job, sent: datetime
) -> Start:
    now = timezone.now()
    fields = fit(
        TrackedRequest,
        {
            "request_id": job.id,
            "status": job.status,
            "state": AppState.PENDING,
            "model": start.run_name,
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
        return Start(TrackedRequest.objects.get(request_id=fields["request_id"]), "tracked")
    log.info("user_id=%s started request_id=%s model=%s", user.pk, job.id, fields["model"])
    reserved.refresh_from_db()
    return Start(reserved, "started")


def start_research(user: AbstractBaseUser, key: ApiKey, start: StartOptions) -> Start:
    """Start the run ``start`` describes with ``key``, at most once per ``start.form_key``.

    Returns the row that follows it; raises ``OneAtATime`` or ``SubmittedTwice`` (nothing
    sent) or ``StartFailed`` (sent, and certainly refused). The caller has checked that the
    key is usable.
    """
    reserved = _reserve(user, start) or _reserve_again(user, start)
    if isinstance(reserved, Start):
        return reserved
    # The reservation's unique id stops a second start with the same key only while that row
    # is named ``starting-``: a start that looked before the first row existed and reserved
    # after it was renamed to its run's id finds that row here.
    if (other := of_form(user.pk, start.form_key).exclude(pk=reserved.pk).first()) is not None:
        reserved.delete()
        return Start(other, "already")
    # An older start of this member still waiting for its answer. Checked after reserving,
    # so that of two starts made at once exactly the older one goes on.
    if TrackedRequest.objects.filter(
        added_by_id=user.pk,
        request_id__startswith=STARTING_PREFIX,
        state=AppState.UNCONFIRMED,
        note=STARTING_NOTE,
        created__gte=in_flight_cutoff(timezone.now()),
        pk__lt=reserved.pk,
    ).exists():
        reserved.delete()
        raise OneAtATime()
    sent = timezone.now()
    try:
        with interactive_client(key) as api:
            job, _ = api.create_run(start.body)
        if not agent.valid_run_id(job.id):
            raise upstream.BadPayload("Perplexity answered the start with an unusable run id.")
    except upstream.UpstreamError as exc:
        if definite_failure(exc):
            reserved.delete()
            raise StartFailed(exc) from exc
        return _unconfirmed(user, reserved, exc)
    except Exception:
        # Whatever broke here, the body may have been sent: the row stays, unconfirmed.
        TrackedRequest.objects.filter(pk=reserved.pk).update(
            note="The start was interrupted. It was not sent again."
        )
        raise
    return _started(user, start, reserved, job, sent)
