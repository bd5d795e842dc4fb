from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from trustguard.db_protections import expect_triggers, pgtriggers

        from . import jobs  # noqa: F401  (registers audit.apply_retention and audit.verify_chains)
        from .models import SQLITE_TRIGGERS, AuditCheckpoint, AuditEvent

        # The database refuses to change the audit trail: checked at start-up, kept across migrations.
        expect_triggers("postgresql", *pgtriggers(AuditEvent, AuditCheckpoint))
        expect_triggers("sqlite", *SQLITE_TRIGGERS)
