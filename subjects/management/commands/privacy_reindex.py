"""Rebuild the blind indexes (after TRUSTGUARD_BLIND_INDEX_KEY changed, or SECRET_KEY when it is unset).

Each live subject's identifiers are recomputed from the contacts sealed under its key (decrypted with the field
keys), in batches, each subject in its own transaction: resumable, safe next to a running application.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from escalations.models import Escalation
from privacy import vault
from privacy.models import Subject, SubjectIdentifier, SubjectRecord


class Command(BaseCommand):
    help = "Recompute the email/phone blind indexes of every data subject under the current blind-index key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        done = unreadable = 0
        last = None
        live = Subject.objects.filter(erased_at__isnull=True, held_until__isnull=True).order_by("pk")
        while True:
            batch = list((live.filter(pk__gt=last) if last else live)[:batch_size])
            if not batch:
                break
            for subject in batch:
                ids = SubjectRecord.objects.filter(subject=subject, record_type="escalation").values_list("record_id", flat=True)
                cache = vault.Subjects([subject])
                digests: set[tuple[str, str]] = set()
                for stored in Escalation.objects.filter(pk__in=list(ids)).values_list("contact", flat=True):
                    try:
                        contact = vault.open_contact(stored, subjects=cache)
                    except vault.FieldUnreadable as exc:
                        unreadable += 1
                        self.stderr.write(f"subject {subject.pk}: {exc}")
                        continue
                    digests.update(vault.identifier_digests(email=contact.get("email", ""),
                                                            phone=contact.get("phone", "")))
                with transaction.atomic():
                    SubjectIdentifier.objects.filter(subject=subject).delete()
                    SubjectIdentifier.objects.bulk_create(
                        [SubjectIdentifier(subject=subject, tenant_id=subject.tenant_id, kind=k, digest=d)
                         for k, d in sorted(digests)], ignore_conflicts=True)
                done += 1
            last = batch[-1].pk
            self.stdout.write(f"{done} subjects re-indexed so far")
        self.stdout.write(f"done: {done} subjects re-indexed, {unreadable} contacts unreadable")
