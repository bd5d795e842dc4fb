"""The French catalogue is complete, and the committed .mo is what compile_translations builds from the .po."""

from __future__ import annotations

from babel.messages.pofile import read_po
from django.utils import translation
from django.utils.translation import gettext

from trustguard.management.commands.compile_translations import compiled, po_files


def test_there_is_a_french_catalogue():
    assert [p.parent.parent.name for p in po_files()] == ["fr"]


def test_every_string_of_the_french_catalogue_is_translated_and_none_is_fuzzy():
    for po in po_files():
        with po.open("rb") as handle:
            catalog = read_po(handle)
        untranslated = [m.id for m in catalog if m.id and (not m.string or not all(m.string if isinstance(m.string, tuple)
                                                                                 else [m.string]))]
        assert untranslated == [], f"{po}: {untranslated[:5]}"
        assert [m.id for m in catalog if m.id and m.fuzzy] == []


def test_the_committed_mo_files_are_compiled_from_the_po_files():
    for po in po_files():
        assert po.with_suffix(".mo").read_bytes() == compiled(po), "run: make translations"


def test_the_interface_speaks_french():
    with translation.override("fr"):
        assert gettext("My queue") == "Ma file"
        assert gettext("Compliance officer") == "Responsable de la conformité"
