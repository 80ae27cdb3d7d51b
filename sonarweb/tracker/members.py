"""What a member's deactivation means for the requests they added.

``sonarweb.accounts.members`` deactivates and reactivates members and says so with its
signals; these receivers (connected in ``TrackerConfig.ready``) stop polling with the member's
key at once, and resume it when they come back with a usable key.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from .following.polling import DEACTIVATED_NOTE, resume_for_user
from .models import ApiKey, AppState, TrackedRequest


def on_member_deactivated(sender: Any, user: AbstractBaseUser, **kwargs: Any) -> int:
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


def on_member_reactivated(sender: Any, user: AbstractBaseUser, **kwargs: Any) -> int:
    """Poll the member's stopped requests again, when their key is usable (otherwise saving
    a key in Settings resumes them, as for anyone)."""
    key = ApiKey.objects.filter(user_id=user.pk).only("invalid_since").first()
    return resume_for_user(user.pk) if key is not None and not key.is_invalid else 0
