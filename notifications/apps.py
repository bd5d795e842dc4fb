from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import jobs, messages, restore_checks  # noqa: F401  (periodic jobs, template-cache signals, restore check)
