from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "sonarweb.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # The tracker, a layer below, never imports this app: it announces a request's end
        # with its signals, and runs the chores apps register (docs/architecture.md).
        from sonarweb.tracker import signals
        from sonarweb.tracker.following import chores

        from .delivery import deliver_due
        from .outbox import on_finished, on_retired

        signals.request_finished.connect(on_finished, dispatch_uid="webhooks-finished")
        signals.request_retired.connect(on_retired, dispatch_uid="webhooks-retired")
        chores.register(chores.Chore("webhooks", deliver_due))
