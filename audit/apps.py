from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from trustguard.db_protections import (
            expect_app_column_update,
            expect_app_function,
            expect_insert_only,
            expect_triggers,
            pgtriggers,
        )

        from . import checks, jobs  # noqa: F401  (the keys' system check; audit.seal_pending, .apply_retention, ...)
        from .models import SEAL_COLUMNS, SQLITE_TRIGGERS, AuditCheckpoint, AuditEvent
        from .services import chains_seal_unkeyed_after_migrate

        # The database refuses to change the audit trail: checked at start-up, kept across migrations.
        expect_triggers("postgresql", *pgtriggers(AuditEvent, AuditCheckpoint))
        expect_triggers("sqlite", *SQLITE_TRIGGERS)
        # The application's database role may only read and append these (trustguard.db_protections).
        expect_insert_only(AuditEvent._meta.db_table, AuditCheckpoint._meta.db_table)
        expect_app_function("audit_prune_prefix(text, bigint)")
        # ...but for the sealer, which fills in an unsealed event's seal columns once (the UPDATE trigger holds that).
        expect_app_column_update(AuditEvent._meta.db_table, *SEAL_COLUMNS)
        # Chains written before the audit key existed get a keyed seal after migrate (audit.services).
        post_migrate.connect(chains_seal_unkeyed_after_migrate, sender=self, dispatch_uid="audit.chains_seal_unkeyed")
