"""Team membership: deactivating a member ends their sessions and stops polling with
their key at once; reactivating them lets their requests move again."""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sonarweb.accounts.models import MemberSession
from sonarweb.tracker.models import ApiKey, AppState, TrackedRequest, UpstreamStatus
from sonarweb.tracker.polling import DEACTIVATED_NOTE, resume_for_user

log = logging.getLogger("sonarweb.members")


def active_user_ids_q(prefix: str = "added_by") -> Q:
    """Rows whose member may still have their key used: the refresher polls only these."""
    return Q(**{f"{prefix}__is_active": True})


def end_sessions(user: AbstractBaseUser) -> int:
    """Delete every session the member has, wherever they signed in: the session table
    names each session's member (MemberSession.member)."""
    ended, _ = MemberSession.objects.filter(member_id=user.pk).delete()
    return ended


def stop_polling(user: AbstractBaseUser) -> int:
    """Stop the member's unfinished requests the way a missing key does: KEY_INVALID with
    a sentence, nothing due. One UPDATE, so a refresher pass sees all or none of it."""
    now = timezone.now()
    return (
        TrackedRequest.objects.filter(added_by_id=user.pk)
        # Rows still polling, or stopped for their key; others keep the reason they stopped.
        .filter(Q(next_poll_at__isnull=False) | Q(state=AppState.KEY_INVALID))
        .exclude(status__in=[UpstreamStatus.COMPLETED, UpstreamStatus.FAILED])
        .exclude(state=AppState.NOT_FOUND)
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
