from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from audit.anchors import anchors_check, anchors_read
from audit.models import AuditEvent
from audit.sealing import audit_seal_pending
from audit.services import chain_key_for
from audit.verification import ChainReport, all_chain_keys, merge_reports, verify_chains


def moment(value: str) -> Any:
    """An ISO 8601 time with its offset (`2025-06-01T14:05:00+00:00`), as a restore's T is given."""
    parsed = parse_datetime(value.replace(" ", "T", 1))
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(value)
    return parsed


class Command(BaseCommand):
    help = ("Seal what is pending, then verify the audit hash chains (and, with --anchors, that they still hold every "
            "head anchored outside the database): exit 0 and 'OK <n> events' when intact, exit 1 naming the first "
            "broken event of each chain. Events not sealed yet (--no-seal) are reported as pending, never as broken.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="verify only this tenant's chain")
        parser.add_argument("--anchors", metavar="PATH", nargs="?", const=str(settings.AUDIT_ANCHOR_DIR),
                            help="also check the signed anchors in PATH (default: TRUSTGUARD_AUDIT_ANCHOR_DIR, "
                                 f"now {settings.AUDIT_ANCHOR_DIR})")
        parser.add_argument("--until", metavar="T", type=moment,
                            help="with --anchors: only anchors written at or before T (ISO 8601 with offset), e.g. "
                                 "after a point-in-time restore to T")
        parser.add_argument("--no-seal", action="store_true",
                            help="verify without sealing first: events not sealed yet are counted as pending (their "
                                 "own seals are still checked)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tenant"]:
            # The tenant model through the event's foreign key: audit stays free of accounts imports.
            tenant_model = AuditEvent._meta.get_field("tenant").related_model
            tenant = tenant_model._default_manager.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant with slug {options['tenant']!r}", returncode=2)
            keys = [chain_key_for(tenant.pk)]
        else:
            keys = all_chain_keys()
        if not options["no_seal"]:
            audit_seal_pending(chain_key=keys[0] if options["tenant"] else None)
        reports = verify_chains(keys)
        checked = ""
        if options["anchors"]:
            directory = Path(options["anchors"])
            if not directory.is_dir():
                raise CommandError(f"--anchors {directory}: no such directory", returncode=2)
            anchors, unreadable = anchors_read(directory, until=options["until"])
            reports = merge_reports(reports, anchors_check(anchors, chain_keys=set(keys) if options["tenant"] else None))
            reports += [ChainReport("anchors", 0, False, problem) for problem in unreadable]
            checked = f"; every head of {len(anchors)} anchors in {directory} is still there"
        broken = [r for r in reports if not r.ok]
        if broken:
            text = "\n".join(r.describe() for r in broken)
            self.stdout.write(text)
            raise CommandError(text, returncode=1)
        pending = sum(r.pending for r in reports)
        self.stdout.write(f"OK {sum(r.events for r in reports)} events{checked}"
                          + (f"; {pending} events pending sealing (each with a valid seal of its own)" if pending else ""))
