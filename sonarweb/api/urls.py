from django.urls import path

from . import views_tokens

urlpatterns = [
    path("settings/tokens/", views_tokens.token_list, name="api_tokens"),
    path("settings/tokens/<int:pk>/revoke/", views_tokens.revoke_token, name="revoke_api_token"),
    path("team/tokens/", views_tokens.team_tokens, name="team_api_tokens"),
]
