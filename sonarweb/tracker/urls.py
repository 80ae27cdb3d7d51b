from django.urls import path

from .views import (
    costs,
    dashboard,
    downloads,
    health,
    importing,
    keys,
    requests,
    research,
    sharing,
    staff,
)

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("healthz", health.healthz, name="healthz"),
    path("settings/", keys.settings_view, name="settings"),
    path("settings/key/delete/", keys.delete_key, name="delete_key"),
    path("r/<slug:slug>/", requests.request_detail, name="request_detail"),
    path("r/<slug:slug>/status/", requests.request_status, name="request_status"),
    path("r/<slug:slug>/answer/", requests.answer_section, name="answer_section"),
    path("r/<slug:slug>/answer.md", downloads.answer_markdown, name="answer_markdown"),
    path("r/<slug:slug>/answer.json", downloads.answer_json, name="answer_json"),
    path("r/<slug:slug>/archive.zip", downloads.answer_bundle, name="answer_bundle"),
    path("r/<slug:slug>/images/retry/", downloads.retry_images, name="retry_images"),
    path("badges/", requests.badges, name="badges"),
    path("new/", research.new_research, name="new_research"),
    path("import/", importing.import_jobs, name="import_jobs"),
    path("r/<slug:slug>/title/", dashboard.edit_title, name="edit_title"),
    path("r/<slug:slug>/share/", sharing.create_share, name="create_share"),
    path("s/<slug:token>/", sharing.shared_answer, name="shared_answer"),
    path("links/", sharing.links, name="links"),
    path("links/<int:pk>/revoke/", sharing.revoke_share, name="revoke_share"),
    path("costs/", costs.costs, name="costs"),
    path("staff/calls/", staff.upstream_calls, name="upstream_calls"),
]
