from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("accounts/", include("sonarweb.passwords")),
    path("admin/", admin.site.urls),
    path("", include("sonarweb.accounts.urls")),
    path("", include("sonarweb.tracker.urls")),
    path("", include("sonarweb.media.urls")),
]
