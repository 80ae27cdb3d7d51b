"""Who may do what on the team pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Protocol

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class Added(Protocol):
    """Something a member added to the team's list (a tracked request): who added it."""

    added_by_id: int | None


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """403 for members who are not staff (the login middleware has already sent
    anonymous visitors to sign in, and a login page would not help a member)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can see or do this.")
        return view(request, *args, **kwargs)

    return wrapper


def may_manage(user: Any, tracked: Added) -> bool:
    """Staff, and the member who added a request, may see its history and remove it."""
    return bool(user.is_staff or (tracked.added_by_id and tracked.added_by_id == user.pk))


def check_may_change_member(actor: Any, member: AbstractBaseUser) -> None:
    """Staff manage members; only a superuser may switch off another staff account, so that
    one staff member cannot lock the others (or the owner) out."""
    if (member.is_staff or member.is_superuser) and not actor.is_superuser:
        raise PermissionDenied("Only a superuser can deactivate or reactivate staff.")
