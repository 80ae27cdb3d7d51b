from django.contrib import admin
from django.urls import include, path

from sonarweb.api.views import urls as api_urls

urlpatterns = [
    # The JSON API (bearer tokens, no sessions) and its public docs: sonarweb/api/views.py.
    path("api/v1/", api_urls()),
    path("accounts/", include("sonarweb.passwords")),
    path("admin/", admin.site.urls),
    path("", include("sonarweb.accounts.urls")),
    path("", include("sonarweb.tracker.urls")),
    path("", include("sonarweb.media.urls")),
    path("", include("sonarweb.api.urls")),
    path("", include("sonarweb.webhooks.urls")),
]
