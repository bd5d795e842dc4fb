from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.retention import register_retention_hold

        from . import jobs  # noqa: F401  (registers the periodic jobs)
        from .audit_retention import open_cases_hold

        register_retention_hold("escalations.open_cases", open_cases_hold)
