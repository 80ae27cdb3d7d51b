from django.urls import re_path

from . import views

SHA = r"(?P<sha256>[0-9a-f]{64})"

urlpatterns = [
    re_path(rf"^images/{SHA}\.webp$", views.team_image, name="team_image"),
]
