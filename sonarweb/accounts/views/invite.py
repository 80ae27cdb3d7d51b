"""/invite/<token>/: the one public page of the team app, where an invitation becomes an
account. There is no other way to sign up."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from ..forms import JoinForm
from ..models import Invitation, hash_token

log = logging.getLogger("sonarweb.invitations")

User = get_user_model()


@login_not_required
@never_cache
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "HEAD", "POST"])
def accept_invite(request: HttpRequest, token: str) -> HttpResponse:
    # 404 for a token that is unknown, used, revoked or expired: a visitor learns nothing
    # about which.
    invitation = get_object_or_404(Invitation.objects.open(), token_hash=hash_token(token))
    # The invitation's email takes part in the password check (not too like the address).
    form = JoinForm(request.POST or None, instance=User(email=invitation.email))
    if request.method == "POST" and form.is_valid():
        user = _create_member(invitation, form)
        if user is not None:
            # Two back ends are configured (throttling first); this one signs in.
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                f"Welcome to the team, {user.get_username()}. Add your Perplexity API key "
                "below to start tracking requests.",
            )
            return HttpResponseRedirect(reverse("settings"), status=303)
    status = 422 if request.method == "POST" else 200
    context = {"form": form, "invitation": invitation}
    response = render(request, "accounts/accept_invite.html", context, status=status)
    # The token is in the address: keep it out of other sites' Referer headers and out of
    # search engines. Not "no-referrer": browsers then send "Origin: null" with the form,
    # which Django's CSRF check rightly refuses.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _create_member(invitation: Invitation, form: JoinForm) -> User | None:
    """Use the invitation and create the account, both or neither."""
    now = timezone.now()
    try:
        with transaction.atomic():
            # Conditional, so a double submit or a second tab cannot use it twice.
            if not Invitation.objects.open(now).filter(pk=invitation.pk).update(used_at=now):
                raise Http404("This invitation link is not valid.")
            user = User.objects.create_user(
                form.cleaned_data["username"],
                invitation.email,
                form.cleaned_data["password1"],
            )
            Invitation.objects.filter(pk=invitation.pk).update(used_by=user)
    except IntegrityError:
        # Someone took the username between the form's check and the insert.
        form.add_error("username", "That username was just taken. Choose another.")
        return None
    log.info("invitation id=%s used: new member user_id=%s", invitation.pk, user.pk)
    return user
