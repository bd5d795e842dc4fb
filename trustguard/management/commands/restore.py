from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trustguard.backup import BackupError, backup_restore

from .verify_restore import report


class Command(BaseCommand):
    help = ("Restore a backup written by `manage.py backup` into the configured database (which must be empty; "
            "SQLite: --replace), then run the restore checks. Stop web, worker and beat first. See docs/BACKUP.md.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", type=Path, help="the .sqlite3 or .dump file (its .json manifest beside it)")
        parser.add_argument("--replace", action="store_true",
                            help="SQLite: replace a database that is not empty (a copy of it is kept aside)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            aside, results = backup_restore(path=options["backup"], replace=options["replace"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if aside is not None:
            self.stdout.write(f"the database as it was before: {aside}")
        self.stdout.write(f"restored {options['backup']}")
        report(self, results)
