"""Shred pseudonymised subjects whose legal hold has ended (run daily, e.g. from cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.models import Tenant
from subjects.services import subject_holds_sweep

from .subject_export import operator


class Command(BaseCommand):
    help = "Erase the data kept under a legal hold once the hold has ended."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for slug in Tenant.objects.order_by("slug").values_list("slug", flat=True):
            total += subject_holds_sweep(actor=operator(slug))
        self.stdout.write(f"{total} subject(s) erased after their legal hold ended")
