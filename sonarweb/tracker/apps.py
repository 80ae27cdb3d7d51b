from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "sonarweb.tracker"
    label = "tracker"
    verbose_name = "Tracked research"
