from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import audit_hooks, restore_checks  # noqa: F401  (login audit signals, retention periods; restore check)
        # Custom roles' admin (its own module; it builds on accounts.admin, so it is loaded here, not from there).
        from . import admin_roles  # noqa: F401
