"""Sign-in, sign-out and passwords under /accounts/.

Django's own views, with one rule of ours: password reset exists only when mail is
configured (``EMAIL_URL``). Without mail its pages answer 404 and nothing links to them,
because a form that says "we sent you a link" when nothing can be sent strands people.
The check runs per request, so the setting is read where it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

View = Callable[..., HttpResponse]


def offers(request: HttpRequest) -> dict[str, Any]:
    """Template context: whether pages may link to password reset."""
    return {"password_reset_offered": settings.SONARWEB_MAIL_ENABLED}


def mail_required(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.SONARWEB_MAIL_ENABLED:
            raise Http404("Password reset needs mail, which this site has not configured.")
        return view(request, *args, **kwargs)

    return login_not_required(wrapped)


urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("password_change/", auth.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "password_reset/",
        mail_required(
            auth.PasswordResetView.as_view(
                email_template_name="registration/password_reset_email.txt",
                subject_template_name="registration/password_reset_subject.txt",
            )
        ),
        name="password_reset",
    ),
    path(
        "password_reset/done/",
        mail_required(auth.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        mail_required(auth.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        mail_required(auth.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
]
