"""Compile the interface's translations (locale/<lang>/LC_MESSAGES/django.po -> .mo) with Babel, in pure Python.

Django's own compilemessages needs GNU gettext's msgfmt, which a fresh machine may lack; `make run` and `make
test` call this instead. The .mo files are also committed (built by this command, byte for byte), so a checkout
serves French without a build step; tests/test_translations.py holds the two equal.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management.base import BaseCommand


def compiled(po_path: Path) -> bytes:
    """The .mo bytes of a .po file (fuzzy entries left out, as msgfmt does)."""
    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def po_files() -> list[Path]:
    return sorted(p for base in settings.LOCALE_PATHS for p in Path(base).glob("*/LC_MESSAGES/django.po"))


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/django.po into .mo files (pure Python; no gettext needed)."

    def handle(self, *args: Any, **options: Any) -> None:
        for po in po_files():
            mo = po.with_suffix(".mo")
            data = compiled(po)
            if not mo.exists() or mo.read_bytes() != data:
                mo.write_bytes(data)
                if options["verbosity"]:
                    self.stdout.write(f"compiled {mo.relative_to(settings.BASE_DIR)}")
