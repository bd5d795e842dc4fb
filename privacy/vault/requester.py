"""The requester, when a source system names someone outside the tenant: sealed, compared by blind mark."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..models import SubjectIdentifier, SubjectRecord
from .blind_index import blind_index
from .keys import (
    UNKNOWN_SUBJECT,
    FieldUnreadable,
    Subjects,
    is_sealed,
    seal,
    subject_for,
    unseal,
)

# --- the requester, when a source system names someone outside the tenant ----------------------------

SEALED_REQUESTER = "[sealed]"  # what Escalation.requested_by_email holds then (exports show it as it is)
BLIND_MARK = "bidx:"  # what ApprovalRequest.requester_email holds then: the four-eyes rule compares blind indexes


def requester_seal(*, tenant_id: int, record_type: str, record_id: object, email: str) -> str:
    """Seal an outsider's email under their own subject's key, linked to the record; the blind mark to keep."""
    subject = subject_for(tenant_id=tenant_id, email=email)
    record, _ = SubjectRecord.objects.get_or_create(subject=subject, tenant_id=tenant_id, record_type=record_type,
                                                    record_id=str(record_id))
    record.sealed = {**record.sealed, "requested_by": seal(subject, email, field="requested_by")}
    record.save(update_fields=["sealed"])
    return blind_mark(email)


_NOT_PRIMED = object()


def prime(escalations: Iterable[Any]) -> None:
    """Load in two queries what showing a page of cases needs (sealed requesters, the subjects of sealed values),
    so that a list costs the same number of queries whatever it holds."""
    items = list(escalations)
    sealed_ids = {str(e.pk) for e in items if getattr(e, "requested_by_email", "") == SEALED_REQUESTER}
    requesters: dict[str, Any] = {}
    if sealed_ids:
        for record_id, values in SubjectRecord.objects.filter(record_type="escalation", record_id__in=sealed_ids) \
                .values_list("record_id", "sealed"):
            value = (values or {}).get("requested_by")
            if value is not None and is_sealed(value):
                requesters[record_id] = value
    subjects = Subjects()
    subjects.prefetch([*requesters.values(), *(v for e in items if isinstance(getattr(e, "payload", None), dict)
                                                for v in e.payload.values())])
    for e in items:
        e._privacy_subjects = subjects
        e._privacy_requester = requesters.get(str(e.pk))


def requested_by_of(escalation: Any) -> str:
    """The requester's email of an escalation, opened when sealed; "" when there is none or it cannot be read."""
    stored = getattr(escalation, "requested_by_email", "") or ""
    if stored != SEALED_REQUESTER:
        return stored
    in_hand = getattr(escalation, "_privacy_requester_sealed_now", None)
    if in_hand is not None:
        return str(in_hand)  # sealed by this very request (a create's 201 body): nothing to read back
    primed = getattr(escalation, "_privacy_requester", _NOT_PRIMED)
    try:
        if primed is _NOT_PRIMED:
            return requester_open(record_type="escalation", record_id=escalation.pk)
        if primed is None:
            return ""
        return str(unseal(primed, field="requested_by", subjects=getattr(escalation, "_privacy_subjects", None)))  # type: ignore[arg-type]  # a str when primed
    except FieldUnreadable:
        return ""


def subjects_of(escalation: Any) -> Subjects | None:
    """The subjects prime() loaded for this case's page, if any."""
    return getattr(escalation, "_privacy_subjects", None)


def blind_mark(email: str) -> str:
    return BLIND_MARK + (blind_index(SubjectIdentifier.Kind.EMAIL, email) or "")


def same_person_email(stored: str, email: str) -> bool:
    """The four-eyes email comparison, whether `stored` is a plain email or a blind mark."""
    if not stored or not email:
        return False
    if stored.startswith(BLIND_MARK):
        return stored == blind_mark(email)
    return stored.lower() == email.lower()


def requester_open(*, record_type: str, record_id: object) -> str:
    """The sealed requester's email of a record; FieldUnreadable("requested_by", ...) when it cannot be read."""
    for record in SubjectRecord.objects.filter(record_type=record_type, record_id=str(record_id)).select_related("subject"):
        sealed = (record.sealed or {}).get("requested_by")
        if sealed is not None and is_sealed(sealed):
            return str(unseal(sealed, field="requested_by", subjects=Subjects([record.subject])))
    raise FieldUnreadable("requested_by", UNKNOWN_SUBJECT)
