from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import AuditEvent
from audit.sealing import audit_seal_pending, sealing_lag
from audit.services import chain_key_for


class Command(BaseCommand):
    help = ("Seal the audit events written since the last sealing onto their chains now (what the beat job "
            "audit.seal_pending does every few seconds); exit 1 when a chain stops at an event altered before sealing.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="seal only this tenant's chain")

    def handle(self, *args: Any, **options: Any) -> None:
        chain_key = None
        if options["tenant"]:
            # The tenant model through the event's foreign key: audit stays free of accounts imports.
            tenant_model = AuditEvent._meta.get_field("tenant").related_model
            tenant = tenant_model._default_manager.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant with slug {options['tenant']!r}", returncode=2)
            chain_key = chain_key_for(tenant.pk)
        result = audit_seal_pending(chain_key=chain_key)
        lag = sealing_lag()
        text = f"{result.describe()}; {lag['unsealed']} unsealed left, oldest {lag['oldest_age_seconds']:.1f} s"
        if result.refused:
            raise CommandError(text, returncode=1)
        self.stdout.write(text)
