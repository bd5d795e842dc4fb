from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Operators' numbers and files: summary, exports, PDF reports; and the app that wires health and metrics."""

    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registered here (the top of the app graph) so trustguard/ and the leaf apps never import us.
        from . import health_checks, jobs, signals  # noqa: F401

        health_checks.register()
        signals.connect()
