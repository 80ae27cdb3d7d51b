from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect


class HtmxAwareLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Login required everywhere; an htmx request from an expired session moves the whole
    page to the login form instead of swapping the login page into a badge."""

    def handle_no_permission(self, request: HttpRequest, view_func: Any) -> HttpResponse:
        if request.headers.get("HX-Request") != "true":
            return super().handle_no_permission(request, view_func)
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        # Only a path on this site is a safe place to come back to.
        back = current.path or reverse("dashboard")
        if current.query:
            back = f"{back}?{current.query}"
        login = redirect_to_login(back, resolve_url(settings.LOGIN_URL))
        return HttpResponseClientRedirect(login["Location"])
