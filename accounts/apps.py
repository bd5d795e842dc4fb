from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Custom roles' admin (its own module; it builds on accounts.admin, so it is loaded here, not from there).
        from . import (  # noqa: F401  (login audit signals, retention periods; restore check)
            admin_roles,
            audit_hooks,
            restore_checks,
        )
