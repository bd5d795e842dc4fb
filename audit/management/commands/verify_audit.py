from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import AuditEvent
from audit.services import chain_key_for
from audit.verification import all_chain_keys, verify_chains


class Command(BaseCommand):
    help = "Verify the audit hash chains: exit 0 and 'OK <n> events' when intact, exit 1 naming the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="verify only this tenant's chain")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tenant"]:
            # The tenant model through the event's foreign key: audit stays free of accounts imports.
            tenant_model = AuditEvent._meta.get_field("tenant").related_model
            tenant = tenant_model._default_manager.filter(slug=options["tenant"]).first()  # type: ignore[union-attr]
            if tenant is None:
                raise CommandError(f"no tenant with slug {options['tenant']!r}", returncode=2)
            keys = [chain_key_for(tenant.pk)]
        else:
            keys = all_chain_keys()
        reports = verify_chains(keys)
        broken = next((r for r in reports if not r.ok), None)
        if broken is not None:
            self.stdout.write(broken.describe())
            raise CommandError(broken.describe(), returncode=1)
        self.stdout.write(f"OK {sum(r.events for r in reports)} events")
