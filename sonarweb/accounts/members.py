"""Team membership: deactivating a member ends their sessions and stops polling with
their key at once; reactivating them lets their requests move again."""

from __future__ import annotations

import logging

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sonarweb.tracker.models import ApiKey, AppState, TrackedRequest
from sonarweb.tracker.polling import DEACTIVATED_NOTE, resume_for_user

log = logging.getLogger("sonarweb.members")


def active_user_ids_q(prefix: str = "added_by") -> Q:
    """Rows whose member may still have their key used: the refresher polls only these."""
    return Q(**{f"{prefix}__is_active": True})


# Sessions read, and deleted, this many at a time.
SESSION_BATCH = 500


def end_sessions(user: AbstractBaseUser) -> int:
    """Delete every session the member has, wherever they signed in.

    An inactive member is already anonymous on their next request (Django's ModelBackend
    refuses them); deleting the sessions keeps reactivation from bringing them back. Django's
    session table does not name a session's member, so each live session is decoded, a batch
    at a time: a team has few.
    """
    member = user._meta.pk.value_to_string(user)  # as django.contrib.auth.login stores it
    live = Session.objects.filter(expire_date__gt=timezone.now()).order_by("pk")
    theirs = [
        session.pk
        for session in live.iterator(chunk_size=SESSION_BATCH)
        if session.get_decoded().get(SESSION_KEY) == member
    ]
    ended = 0
    for start in range(0, len(theirs), SESSION_BATCH):
        deleted, _ = Session.objects.filter(pk__in=theirs[start : start + SESSION_BATCH]).delete()
        ended += deleted
    return ended


def stop_polling(user: AbstractBaseUser) -> int:
    """Stop the member's unfinished requests the way a missing key does: KEY_INVALID with
    a sentence, nothing due. One UPDATE, so a refresher pass sees all or none of it."""
    now = timezone.now()
    return (
        TrackedRequest.objects.filter(added_by_id=user.pk)
        # Rows still polling, or stopped for their key; others keep the reason they stopped.
        .filter(Q(next_poll_at__isnull=False) | Q(state=AppState.KEY_INVALID))
        .unfinished()
        .exclude(state__in=[AppState.NOT_FOUND, AppState.RETIRED, AppState.UNCONFIRMED])
        .update(
            state=AppState.KEY_INVALID,
            next_poll_at=None,
            note=DEACTIVATED_NOTE,
            last_polled_at=now,
            updated=now,
        )
    )


def deactivate(user: AbstractBaseUser) -> tuple[int, int]:
    """Sign the member out everywhere and stop polling with their key.

    Their key stays stored (encrypted), so reactivating them needs nothing from them;
    deleting the account in the admin deletes it.
    """
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        stopped = stop_polling(user)
    ended = end_sessions(user)
    log.info(
        "user_id=%s deactivated: %d sessions ended, %d requests stopped", user.pk, ended, stopped
    )
    return ended, stopped


def reactivate(user: AbstractBaseUser) -> int:
    """Let the member sign in again; their requests resume when their key is usable
    (otherwise saving a key in Settings resumes them, as for anyone)."""
    user.is_active = True
    user.save(update_fields=["is_active"])
    key = ApiKey.objects.filter(user_id=user.pk).only("invalid_since").first()
    resumed = resume_for_user(user.pk) if key is not None and not key.is_invalid else 0
    log.info("user_id=%s reactivated: %d requests resumed", user.pk, resumed)
    return resumed
