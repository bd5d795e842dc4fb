"""Re-encrypt every value under the newest field key (after prepending a key to TRUSTGUARD_FIELD_KEYS).

In batches by primary key; each value is replaced only if it is still the one read (a conditional UPDATE), so
the command is safe next to a running application and resumable: run it again after an interruption and it
picks up what is left. Values that no configured key decrypts are counted and named by key id, never changed.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser

from trustguard import crypto


class Command(BaseCommand):
    help = "Re-encrypt secrets at rest under the newest key of TRUSTGUARD_FIELD_KEYS (resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--dry-run", action="store_true", help="only count what is not under the newest key")

    def handle(self, *args: Any, batch_size: int, dry_run: bool, **options: Any) -> None:
        newest = crypto.current_key_id()
        unreadable_total = 0
        for label, field, filters in crypto.ENCRYPTED_FIELDS:
            model = apps.get_model(label)
            pending = (model.objects.filter(**filters).exclude(**{field: ""})
                       .exclude(**{f"{field}__startswith": f"{newest}:"}))
            if dry_run:
                self.stdout.write(f"{label}.{field}: {pending.count()} to re-encrypt")
                continue
            done, unreadable, last_pk = 0, 0, None
            while True:
                batch = pending.order_by("pk")
                if last_pk is not None:
                    batch = batch.filter(pk__gt=last_pk)
                rows = list(batch.values_list("pk", field)[:batch_size])
                if not rows:
                    break
                for pk, stored in rows:
                    try:
                        fresh = crypto.reencrypt(stored)
                    except crypto.SecretUnreadable as exc:
                        unreadable += 1
                        self.stderr.write(f"{label}.{field} {pk}: {exc}")
                        continue
                    done += model.objects.filter(pk=pk, **{field: stored}).update(**{field: fresh})
                last_pk = rows[-1][0]
                self.stdout.write(f"{label}.{field}: {done} re-encrypted so far")
            unreadable_total += unreadable
            self.stdout.write(f"{label}.{field}: {done} re-encrypted, {unreadable} unreadable")
        if not dry_run:
            self.stdout.write(f"done: every readable value is under key id {newest}"
                              + (f"; {unreadable_total} unreadable (their key is not configured)" if unreadable_total else ""))
