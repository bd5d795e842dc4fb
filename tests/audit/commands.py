"""`manage.py verify_audit` as the audit tests run it: its exit code and what it printed."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError


def verify_audit(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()
