from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Dependency inversion: notifications (a leaf) asks us who to tell about escalation events.
        from notifications.registry import register_recipient_resolver

        from .notify import escalation_recipients

        register_recipient_resolver("escalation", escalation_recipients)
