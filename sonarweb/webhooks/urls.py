from django.urls import path

from . import views

urlpatterns = [
    path("team/webhooks/", views.webhook_list, name="webhooks"),
    path("team/webhooks/new/", views.webhook_add, name="webhook_add"),
    path("team/webhooks/<int:pk>/", views.webhook_detail, name="webhook_detail"),
    path("team/webhooks/<int:pk>/enable/", views.webhook_enable, name="webhook_enable"),
    path("team/webhooks/<int:pk>/disable/", views.webhook_disable, name="webhook_disable"),
    path("team/webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook_delete"),
    path(
        "team/webhooks/deliveries/<int:pk>/redeliver/",
        views.webhook_redeliver,
        name="webhook_redeliver",
    ),
]
