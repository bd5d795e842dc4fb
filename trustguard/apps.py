from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TrustguardConfig(AppConfig):
    """The project itself as an app: its models (idempotency keys), checks, management commands and jobs."""

    name = "trustguard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the periodic jobs of the API plumbing (Celery tasks) and schema extensions.
        from . import checks  # noqa: F401  (system checks)
        from .api import jobs, schema  # noqa: F401
        from .db_protections import pg_app_role_grant_after_migrate, sqlite_triggers_reinstall_after_migrate
        from .metrics_events import connect as metrics_connect

        # After every migrate, whichever app's migrations rebuilt a table (sent once, after the whole plan).
        post_migrate.connect(sqlite_triggers_reinstall_after_migrate, sender=self,
                             dispatch_uid="trustguard.sqlite_triggers_reinstall")
        # PostgreSQL: the application's role (TRUSTGUARD_DB_APP_ROLE) gets exactly its privileges on the new tables.
        post_migrate.connect(pg_app_role_grant_after_migrate, sender=self, dispatch_uid="trustguard.pg_app_role_grant")
        # The domain counters, from committed audit events and delivery attempts; the outbox and delivery gauges.
        metrics_connect()
