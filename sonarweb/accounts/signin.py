"""At most the limit of password checks per window, however many sign-ins arrive at once.

django-axes (sonarweb/accounts/throttle.py) reads the failures before the password is
checked and counts the failure after: sign-ins sent together all pass its check, and each
gets its password checked. Here every sign-in first reserves one check for its username and
one for its address, each with a single conditional UPDATE (atomic on SQLite and
PostgreSQL alike); when either is used up, the sign-in is refused unchecked, with the same
429 page axes shows (throttle.lockout_response).

A scope's window works as axes' memory does: it opens with the first reservation and lasts
SONARWEB_LOGIN_LOCKOUT_MINUTES after the last failure. Reserving does not extend it, so a
sign-in that succeeds leaves it as it was: the username's row is deleted, as axes deletes
its failures, and the address gets its one reservation back (the address keeps its
failures, as throttle.py explains). Axes' records stay the audit trail and decide the lock;
these rows only stop a burst from getting past it. Rows are removed once their window has
passed (``prune``, from the refresher's housekeeping).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from axes.helpers import get_client_ip_address, get_client_username, get_credentials
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, PositiveIntegerField, Q, Value, When
from django.db.models.functions import Greatest
from django.http import HttpRequest
from django.utils import timezone

from .models import SignInAllowance

USER = "user:"
ADDRESS = "addr:"
# Where a sign-in's reservations are noted on its request, for the outcome to settle them.
RESERVED = "sonarweb_signin_reserved"
_SCOPE_LENGTH = SignInAllowance._meta.get_field("scope").max_length


def window(request: HttpRequest | None = None) -> timedelta:
    """AXES_COOLOFF_TIME: both how long failures are remembered and how long a lock holds."""
    return timedelta(minutes=settings.SONARWEB_LOGIN_LOCKOUT_MINUTES)


def user_scope(username: str) -> str:
    scope = USER + username
    if len(scope) <= _SCOPE_LENGTH:
        return scope
    # Longer than any username the forms accept: still one row per name.
    return "user#" + hashlib.sha256(username.encode()).hexdigest()


def address_scope(address: str | None) -> str:
    return ADDRESS + (address or "unknown")


def reserve(scope: str, limit: int, now: datetime | None = None) -> bool:
    """Take one password check from ``scope``'s allowance; False when it is used up.

    One UPDATE does it: it matches only while the row has room (or its window has passed,
    when it starts a new window), so any number of sign-ins at once get at most ``limit``
    between them. A scope's first sign-in inserts the row; the one that loses that race
    takes its reservation from the row the winner made.
    """
    now = now or timezone.now()
    rows = SignInAllowance.objects.filter(scope=scope)
    expired = Q(last_at__lt=now - window())

    def take() -> bool:
        return bool(
            rows.filter(Q(used__lt=limit) | expired).update(
                used=Case(
                    When(expired, then=Value(1)),
                    default=F("used") + 1,
                    output_field=PositiveIntegerField(),
                ),
                last_at=Case(
                    When(expired, then=Value(now)),
                    default=F("last_at"),
                    output_field=DateTimeField(),
                ),
            )
        )

    if take():
        return True
    if rows.exists():
        return False
    try:
        with transaction.atomic():
            SignInAllowance.objects.create(scope=scope, used=1, last_at=now)
    except IntegrityError:
        return take()
    return True


def give_back(scope: str) -> None:
    """Return one reservation that ended without a failure."""
    SignInAllowance.objects.filter(scope=scope, used__gt=0).update(used=F("used") - 1)


def full_scopes(username: str | None, address: str | None, now: datetime) -> Q:
    """The rows that refuse this username or address now (for the lockout page's time)."""
    open_rows = Q(last_at__gte=now - window())
    refusing = Q(
        scope=address_scope(address), used__gte=settings.SONARWEB_LOGIN_FAILURES_PER_ADDRESS
    )
    if username is not None:
        refusing |= Q(
            scope=user_scope(username), used__gte=settings.SONARWEB_LOGIN_FAILURES_PER_USER
        )
    return open_rows & refusing


def prune(now: datetime | None = None) -> int:
    """Delete the rows whose window has passed (they would start afresh anyway)."""
    now = now or timezone.now()
    deleted, _ = SignInAllowance.objects.filter(last_at__lt=now - window()).delete()
    return deleted


# -- the outcome of a sign-in, called from throttle.TeamSignInHandler ---------------------------


def failed(request: HttpRequest) -> None:
    """A checked password was wrong: each scope the sign-in reserved now has its window run
    from the time axes gives the failure (when the sign-in arrived), unless a later failure
    has already moved it further."""
    now = getattr(request, "axes_attempt_time", None) or timezone.now()
    for scope in getattr(request, RESERVED, ()):
        rows = SignInAllowance.objects.filter(scope=scope)
        if rows.update(last_at=Greatest(F("last_at"), Value(now, output_field=DateTimeField()))):
            continue
        # Deleted meanwhile by a successful sign-in: the failure still counts, as in axes.
        try:
            with transaction.atomic():
                SignInAllowance.objects.create(scope=scope, used=1, last_at=now)
        except IntegrityError:
            rows.filter(last_at__lt=now).update(last_at=now)


def succeeded(request: HttpRequest) -> None:
    """The username's row went with axes' failures (TeamSignInHandler.reset_user_attempts);
    the address gets back the reservation this sign-in took."""
    for scope in getattr(request, RESERVED, ()):
        if scope.startswith(ADDRESS):
            give_back(scope)
    setattr(request, RESERVED, ())


class SignInAllowanceBackend:
    """Reserves one password check per username and per address before ModelBackend runs.

    It comes after axes' backend (which refuses a sign-in already locked out, reserving
    nothing) and before ModelBackend (which checks the password). It never signs anyone
    in; without a reservation it refuses as axes does: it flags the request as locked out
    and raises PermissionDenied, so Django reports a failed sign-in, axes counts nothing,
    and axes' middleware answers with the lockout page.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None or not settings.AXES_ENABLED:
            return None
        name = get_client_username(request, get_credentials(username, **kwargs))
        if name is None or password is None:
            return None  # ModelBackend checks nothing either
        address = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
        now = getattr(request, "axes_attempt_time", None)  # axes' clock for this sign-in
        taken: list[str] = []
        for scope, limit in (
            (user_scope(name), settings.SONARWEB_LOGIN_FAILURES_PER_USER),
            (address_scope(address), settings.SONARWEB_LOGIN_FAILURES_PER_ADDRESS),
        ):
            if not reserve(scope, limit, now):
                for earlier in taken:
                    give_back(earlier)
                request.axes_locked_out = True
                raise PermissionDenied("No sign-in attempts left in this window.")
            taken.append(scope)
        setattr(request, RESERVED, tuple(taken))
        return None
