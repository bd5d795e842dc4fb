from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trustguard.backup import BackupError, backup_create, backups_prune


class Command(BaseCommand):
    help = ("Back up the configured database (SQLite: online backup API; PostgreSQL: pg_dump) with a manifest "
            "of its rows and key fingerprints. Safe while the application runs. See docs/BACKUP.md.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", metavar="DIR", type=Path, default=None,
                            help="directory to write to (default: TRUSTGUARD_BACKUP_DIR, or var/backups)")
        parser.add_argument("--keep", metavar="N", type=int, default=0,
                            help="afterwards, delete all but the newest N backups in that directory (default: keep all)")

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["output"] or settings.BACKUP_DIR
        if options["keep"] < 0:
            raise CommandError("--keep must be 0 (keep all) or more")
        try:
            backup = backup_create(directory=directory)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        rows = backup.manifest["rows"]
        self.stdout.write(f"backup {backup.path} ({backup.manifest['bytes']} bytes, {backup.manifest['engine']})")
        self.stdout.write(f"manifest {backup.manifest_path}: {len(rows)} tables, {sum(rows.values())} rows "
                          f"(escalations {rows.get('escalations_escalation', 0)}, "
                          f"audit events {rows.get('audit_auditevent', 0)})")
        self.stdout.write("Keep the keys listed in docs/BACKUP.md elsewhere: this file is useless without them.")
        if options["keep"]:
            for old in backups_prune(directory=directory, keep=options["keep"]):
                self.stdout.write(f"removed {old}")
