from django.urls import re_path

from . import views

SHA = r"(?P<sha256>[0-9a-f]{64})"

urlpatterns = [
    re_path(rf"^images/{SHA}\.webp$", views.team_image, name="team_image"),
    re_path(
        rf"^s/(?P<token>[A-Za-z0-9_-]{{1,64}})/images/{SHA}\.webp$",
        views.shared_image,
        name="shared_image",
    ),
]
