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

        # Who is away (delegation windows) is cached per process by the tenant's configuration generation; the
        # sweep's start and end marks change no window.
        from .models import Delegation
        from .tenant_config import bump_on_change

        bump_on_change(Delegation, ignore_fields=frozenset({"started_at", "ended_at"}))
