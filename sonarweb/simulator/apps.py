from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    name = "sonarweb.simulator"
    label = "simulator"
    verbose_name = "Sonar API simulator"
