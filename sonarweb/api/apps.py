from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "sonarweb.api"
    label = "api"
    verbose_name = "API tokens"
