from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trustguard.periodic import job_run, periodic_jobs


class Command(BaseCommand):
    help = "Run every periodic job once, synchronously (the same Celery tasks beat runs), and print what each did."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", action="append", default=[], help="run only this job (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        unknown = sorted(set(options["only"]) - set(periodic_jobs()))
        if unknown:
            raise CommandError(f"no periodic job named {', '.join(unknown)}; known: {', '.join(periodic_jobs())}")
        for name in periodic_jobs():
            if not options["only"] or name in options["only"]:
                self.stdout.write(f"{name}: {job_run(name)}")
