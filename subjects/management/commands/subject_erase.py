"""Operators: `manage.py subject_erase --tenant demo --email a@b.c` crypto-shreds the subject. Audited."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subjects.services import subject_erase, subject_query
from trustguard.errors import DomainError

from .subject_export import add_subject_arguments, operator


class Command(BaseCommand):
    help = "Erase a data subject (destroys their data key); refused (exit 1) while a legal hold stands."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            query = subject_query(email=options["email"], phone=options["phone"], entity_id=options["entity_id"])
            result = subject_erase(actor=operator(options["tenant"]), query=query)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(json.dumps(result.as_dict(), indent=2))
        if result.status == "refused":
            raise CommandError("erasure refused: legal hold (see legal_holds above); nothing was erased")
