"""Team membership: deactivating a member ends their sessions and stops polling with
their key at once; reactivating them lets their requests move again.

The requests are the tracker's, a layer above this app (docs/architecture.md), so this module
says what happened to the member with a signal and the tracker does its part
(``sonarweb/tracker/members.py``, connected in ``TrackerConfig.ready``). A receiver answers
with how many requests it stopped or resumed.
"""

from __future__ import annotations

import logging

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

log = logging.getLogger("sonarweb.members")

# Sent (by the user model) with ``user`` inside the transaction that deactivates them: a
# receiver stops what the member's key was doing and returns how many requests it stopped.
member_deactivated = Signal()
# Sent (by the user model) with ``user`` once they may sign in again: a receiver returns how
# many requests it resumed.
member_reactivated = Signal()


def _total(responses: list[tuple[object, object]]) -> int:
    return sum(n for _, n in responses if isinstance(n, int))


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


def deactivate(user: AbstractBaseUser) -> tuple[int, int]:
    """Sign the member out everywhere and stop polling with their key.

    Their key stays stored (encrypted), so reactivating them needs nothing from them;
    deleting the account in the admin deletes it.
    """
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        stopped = _total(member_deactivated.send(sender=type(user), user=user))
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
    resumed = _total(member_reactivated.send(sender=type(user), user=user))
    log.info("user_id=%s reactivated: %d requests resumed", user.pk, resumed)
    return resumed
