"""/team/webhooks/: staff add, edit, disable and delete endpoints, and see their deliveries.

A new Standard Webhooks endpoint's signing secret is answered directly (never redirected), so
it is shown this once and never put in the session or a message. A Slack URL is never shown
back: pages show its host and last four characters.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from sonarweb.accounts.views.access import staff_required

from . import conf, delivery, signing
from .forms import EndpointForm
from .models import Attempt, Delivery, DeliveryState, Endpoint, Format

RECENT_DELIVERIES = 25


def _back_to(endpoint: Endpoint) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("webhook_detail", args=[endpoint.pk]), status=303)


@never_cache
@require_safe
@staff_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    endpoints = Endpoint.objects.annotate(
        waiting=Count("deliveries", filter=Q(deliveries__state=DeliveryState.PENDING)),
        gave_up=Count("deliveries", filter=Q(deliveries__state=DeliveryState.FAILED)),
    )
    context = {
        "endpoints": endpoints,
        "alerts": [e for e in endpoints if e.disabled_automatically and not e.enabled],
        "private_permitted": conf.private_opt_in_permitted(),
    }
    return render(request, "webhooks/list.html", context)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@staff_required
def webhook_add(request: HttpRequest) -> HttpResponse:
    """The form; POST makes the endpoint and, for Standard Webhooks, shows its secret once."""
    if request.method != "POST":
        return render(request, "webhooks/add.html", {"form": EndpointForm()})
    form = EndpointForm(request.POST)
    if not form.is_valid():
        return render(request, "webhooks/add.html", {"form": form}, status=422)
    endpoint = Endpoint(created_by=request.user)
    form.apply(endpoint)
    secret = ""
    if endpoint.format == Format.STANDARD:
        secret = signing.new_secret()
        endpoint.set_secret(secret)
    endpoint.save()
    if not secret:
        messages.success(request, f"The endpoint “{endpoint.name}” is added.")
        return _back_to(endpoint)
    context = {"endpoint": endpoint, "secret": secret}
    return render(request, "webhooks/created.html", context, status=201)


def _detail(
    request: HttpRequest, endpoint: Endpoint, form: EndpointForm | None = None, status: int = 200
) -> HttpResponse:
    recent = (
        Delivery.objects.filter(endpoint=endpoint)
        .select_related("tracked")
        .prefetch_related(Prefetch("attempt_log", queryset=Attempt.objects.order_by("number")))
        .order_by("-created", "-id")[:RECENT_DELIVERIES]
    )
    context = {
        "endpoint": endpoint,
        "form": form or EndpointForm(endpoint=endpoint),
        "deliveries": recent,
        "private_permitted": conf.private_opt_in_permitted(),
    }
    return render(request, "webhooks/detail.html", context, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@staff_required
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The endpoint, its recent deliveries, and its settings (POST saves them)."""
    endpoint = get_object_or_404(Endpoint, pk=pk)
    if request.method != "POST":
        return _detail(request, endpoint)
    form = EndpointForm(request.POST, endpoint=endpoint)
    if not form.is_valid():
        return _detail(request, endpoint, form, status=422)
    form.apply(endpoint)
    endpoint.save()
    messages.success(request, f"The endpoint “{endpoint.name}” is saved.")
    return _back_to(endpoint)


def _switch(request: HttpRequest, pk: int, done: str, **fields: object) -> HttpResponse:
    """Staff's switch: it clears sonarweb's own disabling, whichever way it goes."""
    endpoint = get_object_or_404(Endpoint, pk=pk)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        disabled_automatically=False, updated=timezone.now(), **fields
    )
    messages.success(request, f"The endpoint “{endpoint.name}” is {done}.")
    return _back_to(endpoint)


@require_POST
@staff_required
def webhook_enable(request: HttpRequest, pk: int) -> HttpResponse:
    """Enable again: failures are forgotten and waiting deliveries go out."""
    return _switch(
        request,
        pk,
        "enabled",
        enabled=True,
        disabled_at=None,
        disabled_reason="",
        consecutive_failures=0,
    )


@require_POST
@staff_required
def webhook_disable(request: HttpRequest, pk: int) -> HttpResponse:
    """Disable: nothing is sent or queued for it until it is enabled again."""
    return _switch(
        request,
        pk,
        "disabled",
        enabled=False,
        disabled_at=timezone.now(),
        disabled_reason=f"Disabled by {request.user.get_username()}.",
    )


@require_http_methods(["GET", "HEAD", "POST"])
@staff_required
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks first; POST deletes the endpoint with its deliveries."""
    endpoint = get_object_or_404(Endpoint, pk=pk)
    if request.method != "POST":
        return render(
            request,
            "tracker/confirm.html",
            {
                "heading": "Delete this webhook endpoint?",
                "sentence": (
                    f"“{endpoint.name}” ({endpoint.url_shown}) gets no more events, and its "
                    "delivery history is deleted with it. This cannot be undone."
                ),
                "action": reverse("webhook_delete", args=[endpoint.pk]),
                "fields": [],
                "button": "Delete endpoint",
                "cancel_url": reverse("webhook_detail", args=[endpoint.pk]),
            },
        )
    endpoint.delete()
    messages.success(request, f"The endpoint “{endpoint.name}” is deleted.")
    return HttpResponseRedirect(reverse("webhooks"), status=303)


@require_POST
@staff_required
def webhook_redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a delivery's message again (same webhook-id and body)."""
    original = get_object_or_404(Delivery.objects.select_related("endpoint"), pk=pk)
    delivery.redeliver(original)
    if original.endpoint.enabled:
        messages.success(request, "Queued again: it is sent within a few seconds.")
    else:
        messages.info(request, "Queued again: it is sent once the endpoint is enabled.")
    return _back_to(original.endpoint)
