"""/r/<slug>/remove/: take a request off the team's list, after a confirmation page."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from sonarweb.accounts.views.access import may_manage

from .. import audit
from ..models import TrackedRequest

log = logging.getLogger("sonarweb.remove")


@require_http_methods(["GET", "HEAD", "POST"])
def remove_request(request: HttpRequest, slug: str) -> HttpResponse:
    """Staff and the member who added a request may remove it; other members get 403.

    GET asks for confirmation (a plain form, so it works without JavaScript); POST removes
    the request with its archived answer and public links, and records who did it.
    """
    tracked = get_object_or_404(
        # Narrow columns only: the archived answer can run to megabytes.
        TrackedRequest.objects.only(
            "pk", "slug", "request_id", "title", "question", "status", "added_by"
        ),
        slug=slug,
    )
    if not may_manage(request.user, tracked):
        raise PermissionDenied("Only staff and the member who added it can remove a request.")
    if request.method != "POST":
        n_links = tracked.share_links.active().count()
        return render(
            request, "tracker/remove_request.html", {"tracked": tracked, "n_links": n_links}
        )
    title = tracked.display_title
    with transaction.atomic():
        audit.record(request.user, "removed", tracked=tracked, detail=title)
        tracked.delete()
    log.info("user_id=%s removed request_id=%s", request.user.pk, tracked.request_id)
    messages.success(request, f"Removed “{title[:80]}” from the team's list.")
    return HttpResponseRedirect(reverse("dashboard"), status=303)
