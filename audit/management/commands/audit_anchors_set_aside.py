from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.anchors import anchors_set_aside

from .verify_audit import moment


class Command(BaseCommand):
    help = ("After a point-in-time restore to T: move the audit anchors written after T into a set-aside-<time> "
            "subdirectory (never edited or deleted), and record that on the platform audit chain.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--after", metavar="T", type=moment, required=True,
                            help="the restore's target time, ISO 8601 with offset (2025-06-01T14:05:00+00:00)")
        parser.add_argument("--reason", default="point-in-time restore", help="why, for the audit event")
        parser.add_argument("--anchors", metavar="PATH", default=str(settings.AUDIT_ANCHOR_DIR),
                            help="the anchor directory (default: TRUSTGUARD_AUDIT_ANCHOR_DIR)")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["anchors"])
        if not directory.is_dir():
            raise CommandError(f"--anchors {directory}: no such directory", returncode=2)
        moved = anchors_set_aside(directory, after=options["after"], reason=options["reason"])
        self.stdout.write(f"set aside {len(moved)} anchors written after {options['after'].isoformat()}"
                          + (f": {', '.join(moved)}" if moved else ""))
