from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "sonarweb.accounts"
    label = "accounts"
    verbose_name = "Team accounts"
