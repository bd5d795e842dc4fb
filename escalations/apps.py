from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.retention import register_retention_hold
        from notifications.registry import register_recipient_resolver
        from trustguard.db_protections import expect_triggers, pgtriggers

        from . import (
            jobs,  # noqa: F401  (registers the periodic jobs: Celery tasks)
            terminology,  # noqa: F401  (forgets cached terms when a term or custom role changes)
        )
        from .audit_retention import open_cases_hold
        from .delegation_notify import delegation_recipients
        from .notify import escalation_closes, escalation_recipients, escalation_recipients_many

        # Dependency inversion: notifications (a leaf) asks us who to tell about escalation events,
        # and audit (a leaf) asks us which events a case still holds under retention.
        register_recipient_resolver("escalation", escalation_recipients, many=escalation_recipients_many,
                                    closes=escalation_closes)
        register_recipient_resolver("delegation", delegation_recipients)
        register_retention_hold("escalations.open_cases", open_cases_hold)

        # Trigger rules and policies are cached per process by the tenant's configuration generation, which
        # every change of them replaces in its own transaction (accounts.tenant_config).
        from accounts.tenant_config import bump_on_change

        from .models import Policy, TriggerRule

        bump_on_change(Policy, TriggerRule)

        # Comments and amendments are evidence, like decisions: the database refuses to change them.
        from .models import SQLITE_TRIGGERS, Amendment, Comment

        expect_triggers("postgresql", *pgtriggers(Comment), *pgtriggers(Amendment))
        expect_triggers("sqlite", *SQLITE_TRIGGERS)
