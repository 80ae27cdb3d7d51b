"""API tokens in Settings (/settings/tokens/) and, for staff, every member's (/team/tokens/).

A new token is answered directly (never redirected), so it is shown this once and is never
put in the session, a cookie or a message; only its HMAC is kept. Any member revokes their
own tokens; staff revoke anyone's. Revoking asks first: on a page without JavaScript, in a
dialog with it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from sonarweb.accounts.models import AuditAction, AuditEvent
from sonarweb.accounts.views.access import staff_required

from . import tokens
from .forms import TokenForm
from .models import ApiToken

log = logging.getLogger("sonarweb.api.tokens")

TEAM_EVENTS = 20
TOKEN_ACTIONS = [
    AuditAction.TOKEN_CREATED,
    AuditAction.TOKEN_REVOKED,
    AuditAction.TOKEN_FIRST_USED,
]


def tokens_context(user: Any, form: TokenForm | None = None) -> dict[str, Any]:
    """What the token section needs: the member's tokens (newest first) and the form."""
    return {
        "api_tokens": ApiToken.objects.filter(user=user).select_related("revoked_by"),
        "token_form": form or TokenForm(),
        "tokens_enabled": tokens.enabled(),
        "max_tokens": tokens.MAX_ACTIVE_TOKENS,
    }


def _page(
    request: HttpRequest,
    form: TokenForm | None = None,
    *,
    new_token: str = "",
    created: ApiToken | None = None,
    status: int = 200,
) -> HttpResponse:
    context = tokens_context(request.user, form)
    context.update(new_token=new_token, created_token=created)
    return render(request, "api/tokens.html", context, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The member's tokens; POST makes one and shows it, once."""
    if request.method != "POST":
        return _page(request)
    form = TokenForm(request.POST)
    if not tokens.enabled():
        form.add_error(
            None,
            "API tokens are turned off on this server: its administrator has to set "
            "SONARWEB_TOKEN_SECRET first.",
        )
        return _page(request, form, status=503)
    if not form.is_valid():
        return _page(request, form, status=422)
    if ApiToken.objects.active().filter(user=request.user).count() >= tokens.MAX_ACTIVE_TOKENS:
        form.add_error(
            None,
            f"You have {tokens.MAX_ACTIVE_TOKENS} working tokens, the most one member may "
            "hold: revoke one you no longer use first.",
        )
        return _page(request, form, status=422)
    token, plaintext = tokens.create_token(
        request.user,
        name=form.cleaned_data["name"],
        scope=form.cleaned_data["scope"],
        expires_at=form.expires_at(),
    )
    return _page(request, new_token=plaintext, created=token, status=201)


@require_http_methods(["GET", "HEAD", "POST"])
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks first (the Revoke button without JavaScript); POST revokes."""
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk)
    if token.user_id != request.user.pk and not request.user.is_staff:
        # Another member's token is none of this member's business: not even its existence.
        raise Http404("No such token.")
    source = request.POST.get("from", request.GET.get("from", ""))
    if source == "team" and request.user.is_staff:
        back = reverse("team_api_tokens")
    else:
        back = reverse("settings" if source == "settings" else "api_tokens")
    if request.method != "POST":
        whose = "" if token.user_id == request.user.pk else f" of {token.user.get_username()}"
        return render(
            request,
            "tracker/confirm.html",
            {
                "heading": "Revoke this API token?",
                "sentence": (
                    f"“{token.name}” ({token.shown}){whose} stops working at once: every "
                    "program that uses it gets 401 from now on. This cannot be undone."
                ),
                "action": reverse("revoke_api_token", args=[token.pk]),
                "fields": [("from", source)] if source else [],
                "button": "Revoke token",
                "cancel_url": back,
            },
        )
    if tokens.revoke(token, request.user):
        messages.success(request, f"The token “{token.name}” is revoked.")
    else:
        messages.info(request, f"The token “{token.name}” was already revoked.")
    return HttpResponseRedirect(back, status=303)


@never_cache
@require_safe
@staff_required
def team_tokens(request: HttpRequest) -> HttpResponse:
    """Staff: every member's tokens, and what was done with tokens lately."""
    context = {
        "api_tokens": ApiToken.objects.select_related("user", "revoked_by"),
        "events": AuditEvent.objects.filter(action__in=TOKEN_ACTIONS)[:TEAM_EVENTS],
        "tokens_enabled": tokens.enabled(),
    }
    return render(request, "api/team_tokens.html", context)
