from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trustguard.backup import BackupError, manifest_read
from trustguard.backup.checks import CheckResult, restore_checks_run


def report(command: BaseCommand, results: list[CheckResult]) -> None:
    """Print one line per check; exit 1 naming the failed ones."""
    for result in results:
        command.stdout.write(f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {result.detail}")
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise CommandError(f"restore checks failed: {', '.join(failed)}", returncode=1)
    command.stdout.write("OK: the database is whole and works with the keys in the environment")


class Command(BaseCommand):
    help = ("Check a restored database before the application goes back on it: migrations, system checks, "
            "the audit chains, the keys (webhook secrets decrypt), and, given the backup's manifest, rows and "
            "key fingerprints. Exit 0 when all pass, 1 naming what failed. See docs/BACKUP.md.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--manifest-of", metavar="BACKUP", type=Path,
                            help="compare with the manifest of this backup file (written by manage.py backup)")

    def handle(self, *args: Any, **options: Any) -> None:
        manifest = None
        if options["manifest_of"] is not None:
            try:
                manifest = manifest_read(options["manifest_of"])
            except BackupError as exc:
                raise CommandError(str(exc)) from exc
            if manifest is None:
                raise CommandError(f"{options['manifest_of']} has no manifest beside it")
        report(self, restore_checks_run(manifest=manifest))
