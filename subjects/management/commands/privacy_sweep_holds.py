"""Shred pseudonymised subjects whose legal hold has ended. Beat runs the same every night (`subjects.sweep_holds`);
this is that job by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from subjects.services import subject_holds_sweep_all


class Command(BaseCommand):
    help = "Erase the data kept under a legal hold once the hold has ended."

    def handle(self, *args: Any, **options: Any) -> None:
        total = subject_holds_sweep_all(system="privacy-operator")
        self.stdout.write(f"{total} subject(s) erased after their legal hold ended")
