"""Public, read-only share links to archived answers (completed, or partial: incomplete or
cancelled), the images they show, and the team's list of them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from sonarweb.media.views import shows_image, stream_image
from sonarweb.perplexity.payload import ANSWERED_STATUSES

from .. import audit
from ..models import AnswerArchive, ShareLink, TrackedRequest
from ..sharing.addresses import for_share
from .access import get_request_for_user
from .requests import answer_html

log = logging.getLogger("sonarweb.sharing")

LINKS_PER_PAGE = 50
EXPIRY_CHOICES = [("never", "Never"), ("1", "In 1 day"), ("7", "In 7 days"), ("30", "In 30 days")]


class ShareForm(forms.Form):
    expires = forms.ChoiceField(label="Link expires", choices=EXPIRY_CHOICES, initial="never")

    def expires_at(self) -> datetime | None:
        choice = self.cleaned_data["expires"]
        if choice == "never":
            return None
        return timezone.now() + timedelta(days=int(choice))


def _panel(
    request: HttpRequest,
    tracked: TrackedRequest,
    error: str = "",
    status: int = 200,
    *,
    notice: str = "",
    focus_link: int | None = None,
) -> HttpResponse:
    """The panel alone, for htmx. ``notice`` says what just happened; ``focus_link`` is the
    link whose Copy button takes the focus (else the notice does): the old panel went away
    with the focus in it."""
    context = {
        "tracked": tracked,
        "share_error": error,
        "share_notice": notice,
        "focus_link": focus_link,
    }
    return render(request, "tracker/_share_panel.html", context, status=status)


@require_POST
def create_share(request: HttpRequest, slug: str) -> HttpResponse:
    tracked = get_request_for_user(request, slug)
    if not tracked.has_answer:
        # The button only shows on archived answers; this answers crafted posts.
        sentence = (
            "Only a completed answer can be shared. The partial answer of a run that stopped "
            "early or was cancelled can be shared too, once it is archived."
        )
        return _panel(request, tracked, sentence, status=409)
    form = ShareForm(request.POST)
    if not form.is_valid():
        return _panel(request, tracked, "Choose when the link expires.", status=422)
    link = ShareLink.objects.create(
        tracked=tracked, created_by=request.user, expires_at=form.expires_at()
    )
    log.info("user_id=%s created share link id=%s for %s", request.user.pk, link.pk, tracked.slug)
    audit.record(request.user, "link_created", link=link)
    if request.htmx:
        return _panel(request, tracked, notice="Public link created.", focus_link=link.pk)
    messages.success(request, "Public link created.")
    return HttpResponseRedirect(tracked.get_absolute_url(), status=303)


@require_http_methods(["GET", "HEAD", "POST"])
def revoke_share(request: HttpRequest, pk: int) -> HttpResponse:
    """Any member may revoke any link: sharing is the team's decision, not one member's.

    GET asks first: it is where the Revoke button leads without JavaScript (with it, a
    dialog on the page asks and posts here directly).
    """
    rows = ShareLink.objects.select_related("tracked", "created_by")
    link = get_object_or_404(rows, pk=pk)
    from_panel = request.POST.get("from", request.GET.get("from")) == "panel"
    back = link.tracked.get_absolute_url() if from_panel else reverse("links")
    if request.method != "POST":
        return render(
            request,
            "tracker/confirm.html",
            {
                "heading": "Revoke this public link?",
                "sentence": (
                    f"Anyone who has the link to “{link.tracked.display_title}” gets "
                    "“Not found” from now on."
                ),
                "action": reverse("revoke_share", args=[link.pk]),
                "fields": [("from", "panel")] if from_panel else [],
                "button": "Revoke link",
                "cancel_url": back,
            },
        )
    # Conditional, so a second click keeps the first revocation time.
    if ShareLink.objects.filter(pk=pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        log.info("user_id=%s revoked share link id=%s", request.user.pk, pk)
        audit.record(request.user, "link_revoked", link=link)
        # The permalink lists the links: a new ``updated`` retires cached copies of it
        # (ShareLink.save does the same for new links).
        TrackedRequest.objects.filter(pk=link.tracked_id).update(updated=timezone.now())
    link.refresh_from_db(fields=["revoked_at"])
    if request.htmx:
        if from_panel:
            return _panel(request, link.tracked, notice="Public link revoked.")
        return render(request, "tracker/links.html#link_row", {"link": link, "swapped": True})
    messages.success(request, "Public link revoked.")
    return HttpResponseRedirect(back, status=303)


@require_safe
def links(request: HttpRequest) -> HttpResponse:
    rows = ShareLink.objects.select_related("tracked", "created_by")
    page = Paginator(rows, LINKS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "tracker/links.html", {"page": page})


def _public(response: HttpResponse) -> HttpResponse:
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_not_required
@never_cache
@require_safe
def shared_answer(request: HttpRequest, token: str) -> HttpResponse:
    """The public page: served from the archive only, so it never calls upstream.

    never_cache keeps browsers and proxies from serving a copy after a revocation.
    """
    link = (
        ShareLink.objects.active()
        .select_related("tracked")
        .filter(token=token, tracked__status__in=ANSWERED_STATUSES)
        .first()
    )
    if link is None:
        return _public(render(request, "tracker/shared_answer.html", {}, status=404))
    tracked = link.tracked
    # Sanitized when it was rendered. Its images are addressed under the share link, where
    # the public image view checks that each belongs to the shared answer.
    html = answer_html(tracked)
    # A short fingerprint of the archived JSON, so a reader can tell two copies apart.
    digest = (
        AnswerArchive.objects.filter(tracked_id=tracked.pk).values_list("sha256", flat=True).first()
    )
    context = {
        "tracked": tracked,
        "link": link,
        "content_hash": (digest or "")[:12],
        # Public pages never show the team's own title, which may be an internal note.
        "public_title": tracked.question or tracked.request_id,
        "answer_html": mark_safe(for_share(html, link.token)) if html else "",  # noqa: S308
    }
    return _public(render(request, "tracker/shared_answer.html", context))


@login_not_required
@require_safe
def shared_image(request: HttpRequest, token: str, sha256: str) -> HttpResponse:
    """An image of the answer behind an active share link; 404 for anything else."""
    tracked_id = (
        ShareLink.objects.active()
        .filter(token=token, tracked__status__in=ANSWERED_STATUSES)
        .values_list("tracked_id", flat=True)
        .first()
    )
    if tracked_id is None:
        raise Http404("No such shared answer.")
    if not shows_image(tracked_id, sha256):
        raise Http404("No such image in this shared answer.")
    return _public(stream_image(request, sha256))
