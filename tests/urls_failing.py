"""The app's URLs plus one view that fails, to see the 500 page as a user would."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def failing(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


urlpatterns = [path("failing/", failing), path("", include("sonarweb.urls"))]
