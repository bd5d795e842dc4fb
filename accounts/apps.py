from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import audit_hooks, restore_checks  # noqa: F401  (login audit signals, retention periods; restore check)
