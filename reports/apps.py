from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Operators' numbers and files: summary, exports, PDF reports. (Health and metrics are wired in trustguard/.)"""

    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import jobs  # noqa: F401  (registers the periodic jobs: Celery tasks)
