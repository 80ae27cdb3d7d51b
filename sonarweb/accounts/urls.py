from django.urls import path

from .views import invite, team

urlpatterns = [
    path("team/", team.team, name="team"),
    path("team/invite/", team.create_invite, name="create_invite"),
    path("team/invites/<int:pk>/revoke/", team.revoke_invite, name="revoke_invite"),
    path("team/members/<int:pk>/deactivate/", team.deactivate_member, name="deactivate_member"),
    path("team/members/<int:pk>/reactivate/", team.reactivate_member, name="reactivate_member"),
    path("invite/<slug:token>/", invite.accept_invite, name="accept_invite"),
]
