"""/team/: the members, open invitations, and staff's controls over both."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from .. import members
from ..forms import InviteForm
from ..models import Invitation, hash_token, new_invite_token
from .access import check_may_change_member, staff_required

User = get_user_model()


def _team(
    request: HttpRequest, form: InviteForm | None = None, new_link: str = "", status: int = 200
) -> HttpResponse:
    staff = request.user.is_staff
    context = {
        # The requests and API keys are the tracker's (a layer above): named by their
        # relations to the member ("tracked_requests", "api_key"), never imported.
        "members": User.objects.order_by("username").annotate(
            n_requests=Count("tracked_requests"),
            has_key=Q(api_key__isnull=False),
            key_rejected=Q(api_key__invalid_since__isnull=False),
        ),
        "is_staff": staff,
        # Invitations may carry an email address: staff only.
        "invites": Invitation.objects.open().select_related("created_by") if staff else [],
        "form": form or InviteForm(),
        "new_link": new_link,
    }
    return render(request, "accounts/team.html", context, status=status)


@never_cache
@require_safe
def team(request: HttpRequest) -> HttpResponse:
    """Every member sees who is on the team; staff also manage it here."""
    return _team(request)


@never_cache
@require_POST
@staff_required
def create_invite(request: HttpRequest) -> HttpResponse:
    """Make a one-time link and show it this once: only its hash is kept, so it can never
    be shown again. Answered directly rather than redirected, so the link is never put in
    the session or a cookie."""
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team(request, form=form, status=422)
    token = new_invite_token()
    Invitation.objects.create(
        token_hash=hash_token(token),
        email=form.cleaned_data["email"],
        created_by=request.user,
        expires_at=form.expires_at(),
    )
    link = request.build_absolute_uri(reverse("accept_invite", args=[token]))
    return _team(request, new_link=link, status=201)


@require_POST
@staff_required
def revoke_invite(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(Invitation, pk=pk)
    revoked = Invitation.objects.open().filter(pk=pk).update(revoked_at=timezone.now())
    if revoked:
        messages.success(request, "Invitation revoked: its link no longer works.")
    else:
        messages.info(request, "That invitation was already used, revoked or expired.")
    return HttpResponseRedirect(reverse("team"), status=303)


@require_POST
@staff_required
def deactivate_member(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    if member.pk == request.user.pk:
        messages.error(request, "You cannot deactivate your own account.")
        return HttpResponseRedirect(reverse("team"), status=303)
    check_may_change_member(request.user, member)
    if not member.is_active:
        messages.info(request, f"{member.get_username()} is already deactivated.")
    else:
        ended, stopped = members.deactivate(member)
        messages.success(
            request,
            f"{member.get_username()} is deactivated and signed out "
            f"({_plural(ended, 'session')} ended). Polling of {_plural(stopped, 'request')} "
            "they added has stopped.",
        )
    return HttpResponseRedirect(reverse("team"), status=303)


@require_POST
@staff_required
def reactivate_member(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    check_may_change_member(request.user, member)
    if member.is_active:
        messages.info(request, f"{member.get_username()} is already active.")
    else:
        resumed = members.reactivate(member)
        tail = (
            f"Polling of {_plural(resumed, 'request')} they added has resumed."
            if resumed
            else "Their requests resume when they have a working API key saved."
        )
        messages.success(request, f"{member.get_username()} can sign in again. {tail}")
    return HttpResponseRedirect(reverse("team"), status=303)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
