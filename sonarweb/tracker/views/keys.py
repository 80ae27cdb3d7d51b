from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from sonarweb.perplexity import client as upstream

from ..following.polling import resume_for_user
from ..forms import ApiKeyForm
from ..keys.upstream import interactive_client_for_secret
from ..models import ApiKey
from .access import key_of

log = logging.getLogger("sonarweb.keys")

FIRST_KEY_NEXT_STEP = (
    "Your API key {mask} works. Next: start new research, or paste the id of a Perplexity "
    "request below to follow it here."
)


@sensitive_post_parameters("api_key")
@sensitive_variables("secret")
@require_http_methods(["GET", "HEAD", "POST"])
def settings_view(request: HttpRequest) -> HttpResponse:
    key = key_of(request)
    first_key = key is None
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        secret = form.cleaned_data["api_key"]
        warning = ""
        try:
            # GET /v1/models needs a valid key (never a Sonar path: the Sonar API's
            # retirement says nothing about the key).
            with interactive_client_for_secret(secret) as api:
                api.check_key()
        except upstream.Unauthorized:
            form.add_error("api_key", "Perplexity rejected this key (401). Check it and try again.")
        except upstream.UpstreamError as exc:
            warning = f"The key was saved, but it could not be checked: {exc.note}"
        if not form.errors:
            key = key or ApiKey(user=request.user)
            key.set_secret(secret)
            key.paused_until = None
            # A key saved before: only what a new secret changes, as the budget and leases
            # other processes keep on its row are theirs to write.
            changed = ["encrypted", "last4", "invalid_since", "paused_until", "updated"]
            key.save(update_fields=None if first_key else changed)
            resumed = resume_for_user(request.user.pk)
            log.info("user_id=%s saved an API key (resumed %d requests)", request.user.pk, resumed)
            if warning:
                messages.warning(request, warning)
            elif first_key:
                # A first working key: nothing more to do here, so on to the next step.
                messages.success(request, FIRST_KEY_NEXT_STEP.format(mask=key.mask))
                return HttpResponseRedirect(reverse("dashboard"), status=303)
            else:
                messages.success(request, f"API key {key.mask} saved and checked.")
            return HttpResponseRedirect(reverse("settings"), status=303)
    status = 422 if request.method == "POST" else 200
    return render(request, "tracker/settings.html", {"form": form, "key": key}, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def delete_key(request: HttpRequest) -> HttpResponse:
    """GET asks first (the Remove key button without JavaScript); POST removes the key."""
    if request.method != "POST":
        key = key_of(request)
        if key is None:
            return HttpResponseRedirect(reverse("settings"), status=303)
        return render(
            request,
            "tracker/confirm.html",
            {
                "heading": "Remove your API key?",
                "sentence": (
                    f"sonarweb forgets {key.mask}. Polling of the requests you added stops "
                    "until you save a key again."
                ),
                "action": reverse("delete_key"),
                "fields": [],
                "button": "Remove key",
                "cancel_url": reverse("settings"),
            },
        )
    deleted, _ = ApiKey.objects.filter(user_id=request.user.pk).delete()
    if deleted:
        messages.success(request, "Your API key was removed.")
    return HttpResponseRedirect(reverse("settings"), status=303)
