"""The admin shows personal data masked, and finds a case by its customer's email or phone (blind index).

Revealing a full value is the case page's "Reveal full values" (privacy.manage, audited), not the admin's.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from . import vault
from .models import SubjectIdentifier, SubjectRecord

MASKED = {"contact": "masked_contact", "payload": "masked_payload"}


def masked_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Field names with the sealed JSON fields replaced by their masked displays."""
    return [MASKED.get(name, name) for name in names]


class PersonalDataAdminMixin:
    record_type = "escalation"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return masked_names(list(super().get_fields(request, obj)))  # type: ignore[misc]  # a mixin for ModelAdmins

    @staticmethod
    def masked_contact(obj: Any) -> str:
        views = vault.contact_views(getattr(obj, "contact", None))
        return format_html_join("", "<div>{}: {}</div>", ((v.label, v.error or v.masked) for v in views)) or "—"

    @staticmethod
    def masked_payload(obj: Any) -> str:
        shown = vault.payload_for_display(getattr(obj, "payload", None))
        return format_html("<pre>{}</pre>", "\n".join(f"{k}: {v}" for k, v in shown.items())) or "—"

    masked_contact.short_description = "contact (masked)"  # type: ignore[attr-defined]  # the admin's column title
    masked_payload.short_description = "payload (personal fields masked)"  # type: ignore[attr-defined]  # the admin's column title

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> tuple[Any, bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)  # type: ignore[misc]  # a mixin for ModelAdmins
        named = vault.looks_like_identifier(search_term)
        digest = vault.blind_index(named[0], named[1]) if named else None
        if digest and named:
            subjects = SubjectIdentifier.objects.filter(kind=named[0], digest=digest).values("subject_id")
            ids = SubjectRecord.objects.filter(subject_id__in=subjects, record_type=self.record_type).values("record_id")
            found = found | queryset.filter(pk__in=[r["record_id"] for r in ids])
        return found, duplicates
