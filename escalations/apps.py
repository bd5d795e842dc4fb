from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications.registry import register_recipient_resolver

        from . import jobs  # noqa: F401  (registers the periodic jobs)
        from .notify import escalation_recipients

        # Dependency inversion: notifications (a leaf) asks us who to tell about escalation events.
        register_recipient_resolver("escalation", escalation_recipients)
