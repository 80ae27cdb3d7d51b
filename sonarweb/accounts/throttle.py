"""Sign-in throttling, built on django-axes (configured in settings.py).

After SONARWEB_LOGIN_FAILURES_PER_USER failures for one username, or
SONARWEB_LOGIN_FAILURES_PER_ADDRESS from one address, with no pause of
SONARWEB_LOGIN_LOCKOUT_MINUTES between them, sign-in is refused for that many minutes,
the right password included. Attempts refused during a lockout are not counted, so the
lock ends when the window after the last counted failure is over.

Axes decides the lock from the failures it has recorded, which only exist once a password
has been checked; sign-ins sent together would all be checked before any is recorded.
sonarweb/accounts/signin.py closes that gap: each sign-in reserves its check beforehand,
so the username and the address never get more checks than their limits in a window.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from functools import lru_cache
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from . import signin
from .models import SignInAllowance

log = logging.getLogger("sonarweb.signin")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _proxies(configured: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in configured)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket counts as its IPv4 self.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_address(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the address failures are counted against.

    The socket's peer, unless that peer is one of our proxies (SONARWEB_PROXY_IPS, the
    addresses gunicorn believes X-Forwarded-Proto from). Then X-Forwarded-For is read from
    the right: each proxy appends the address it saw, so the first entry that is not one of
    our proxies is the client, and anything further left is the client's own claim.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    proxies = _proxies(tuple(settings.SONARWEB_PROXY_IPS))

    def ours(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in proxies)

    seen = _address(peer)
    if seen is None or not ours(seen):
        return peer or None
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # Not an address where a proxy of ours should have written one: trust no
            # further, and count the attempt against the nearest proxy we know.
            break
        if not ours(address):
            return str(address)
        seen = address
    return str(seen)


def failure_limit(request: HttpRequest | None = None, credentials: Any = None) -> int:
    """AXES_FAILURE_LIMIT: the per-username limit (see TeamSignInHandler.get_failures)."""
    return settings.SONARWEB_LOGIN_FAILURES_PER_USER


def _count(attempts: QuerySet) -> int:
    return attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0


class TeamSignInHandler(AxesDatabaseHandler):
    """Axes' database handler with one limit per username and another per address.

    Axes compares a single number with a single limit. Here that number is the username's
    failures, or the address's failures scaled onto the username's limit, whichever is
    higher: it reaches the limit exactly when either count reaches its own.
    """

    def get_failures(self, request: HttpRequest, credentials: Any = None) -> int:
        # Recent failures for the username asked for, and from the client's address.
        recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))
        by_name = recent.filter(username=get_client_username(request, credentials))
        by_address = recent.filter(ip_address=request.axes_ip_address)
        per_name = settings.SONARWEB_LOGIN_FAILURES_PER_USER
        per_address = settings.SONARWEB_LOGIN_FAILURES_PER_ADDRESS
        return max(_count(by_name), _count(by_address) * per_name // per_address)

    def reset_user_attempts(self, request: HttpRequest, credentials: Any = None) -> int:
        """A successful sign-in clears that username's failures. The address keeps its
        failures on other usernames: signing in to one's own account must not buy another
        round of guesses at a colleague's."""
        username = get_client_username(request, credentials)
        deleted, _ = AccessAttempt.objects.filter(username=username).delete()
        SignInAllowance.objects.filter(scope=signin.user_scope(username)).delete()
        return deleted

    def user_login_failed(
        self, sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any
    ) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None:
            signin.failed(request)

    def user_logged_in(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        super().user_logged_in(sender, request, user, **kwargs)
        signin.succeeded(request)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a page like the others, answered with 429 and Retry-After, that
    says when the lock on this username or address has surely ended."""
    username = get_client_username(request, credentials)
    address = getattr(request, "axes_ip_address", None)
    window = signin.window()
    now = timezone.now()
    last = AccessAttempt.objects.filter(
        Q(username=username) | Q(ip_address=address), attempt_time__gte=now - window
    ).aggregate(last=Max("attempt_time"))["last"]
    # Refused before a password was checked (signin.py): its window may be the later one.
    reserved = SignInAllowance.objects.filter(signin.full_scopes(username, address, now)).aggregate(
        last=Max("last_at")
    )["last"]
    until = max(filter(None, [last, reserved]), default=now) + window
    seconds = max(math.ceil((until - now).total_seconds()), 1)
    log.warning(
        "sign-in refused: locked out username=%r address=%s until %s",
        username,
        getattr(request, "axes_ip_address", "-"),
        until.isoformat(timespec="seconds"),
    )
    # The sign-in page the attempt came from: the admin's, or the app's own.
    in_admin = request.path.startswith(reverse("admin:index"))
    context = {
        "until": until,
        "minutes": max(math.ceil(seconds / 60), 1),
        "retry_url": reverse("admin:login" if in_admin else "login"),
    }
    response = render(request, "accounts/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
