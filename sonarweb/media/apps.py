from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "sonarweb.media"
    label = "media"
    verbose_name = "Image archive"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deploy check
