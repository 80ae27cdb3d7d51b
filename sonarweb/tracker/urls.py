from django.urls import path

from .views import dashboard, health, keys, requests

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("healthz", health.healthz, name="healthz"),
    path("settings/", keys.settings_view, name="settings"),
    path("settings/key/delete/", keys.delete_key, name="delete_key"),
    path("r/<str:slug>/", requests.request_detail, name="request_detail"),
    path("r/<str:slug>/status/", requests.request_status, name="request_status"),
    path("badges/", requests.badges, name="badges"),
]
