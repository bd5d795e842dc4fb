"""Operators: `manage.py subject_export --tenant demo --email a@b.c [--pdf out.pdf]` prints the JSON export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.actors import Actor
from accounts.models import Tenant
from subjects.pdf import subject_export_pdf
from subjects.services import PrivacyOperator, subject_export, subject_query
from trustguard.errors import DomainError


def operator(tenant_slug: str) -> Actor:
    tenant = Tenant.objects.filter(slug=tenant_slug).first()
    if tenant is None:
        raise CommandError(f"no tenant {tenant_slug!r}")
    return PrivacyOperator(tenant=tenant, system="privacy-operator")


def add_subject_arguments(parser: CommandParser) -> None:
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--email", default="")
    parser.add_argument("--phone", default="")
    parser.add_argument("--entity-id", default="")


class Command(BaseCommand):
    help = "Export everything held about a data subject (JSON on stdout; --pdf FILE for the readable PDF). Audited."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--pdf", default="", help="also write the PDF here")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            query = subject_query(email=options["email"], phone=options["phone"], entity_id=options["entity_id"])
            document = subject_export(actor=operator(options["tenant"]), query=query)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        if options["pdf"]:
            Path(options["pdf"]).write_bytes(subject_export_pdf(document))
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
