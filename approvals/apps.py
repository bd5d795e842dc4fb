from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from trustguard.db_protections import expect_insert_only, expect_triggers, pgtriggers

        from .models import SQLITE_TRIGGERS, Decision

        # Decisions are evidence: the database refuses to change them (checked at start-up, kept across migrations).
        expect_triggers("postgresql", *pgtriggers(Decision))
        expect_triggers("sqlite", *SQLITE_TRIGGERS)
        expect_insert_only(Decision._meta.db_table)
