from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.actors import OperatorActor
from notifications.deliveries.replay import delivery_replay
from notifications.selectors import dead_letters
from trustguard.errors import DomainError


class Command(BaseCommand):
    help = "Replay dead-lettered deliveries: the given ids, or --all (optionally of one --tenant-id)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="delivery ids")
        parser.add_argument("--all", action="store_true", help="every dead letter")
        parser.add_argument("--tenant-id", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        ids = options["ids"]
        if options["all"]:
            ids = list(dead_letters(tenant_id=options["tenant_id"]).values_list("id", flat=True))
        elif not ids:
            raise CommandError("name delivery ids, or pass --all")
        actor = OperatorActor.system("replay_dead_letters")
        failed = 0
        for delivery_id in ids:
            try:
                delivery_replay(delivery_id=delivery_id, actor=actor, tenant_id=options["tenant_id"])
                self.stdout.write(f"{delivery_id}: queued")
            except DomainError as exc:
                failed += 1
                self.stderr.write(f"{delivery_id}: {exc.detail}")
        self.stdout.write(f"replayed {len(ids) - failed} of {len(ids)}")
        if failed:
            raise CommandError(f"{failed} not replayed")
