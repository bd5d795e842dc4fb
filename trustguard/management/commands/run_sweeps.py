from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from trustguard.jobs import registered_jobs, run_job


class Command(BaseCommand):
    help = "Run every periodic job once, synchronously (the same jobs beat runs), and print what each did."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", action="append", default=[], help="run only this job (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = [job for job in registered_jobs() if not options["only"] or job.name in options["only"]]
        for job in jobs:
            self.stdout.write(f"{job.name}: {run_job(job.name)}")
        if not jobs:
            self.stdout.write("no periodic jobs registered")
