"""Subject access (export) and erasure, with legal holds. docs/PRIVACY.md explains the design.

A subject is found by email or phone (blind index: privacy.vault) or by the source entity id of their cases.
Every call needs privacy.manage, is audited with a commitment (an HMAC of the query, never the query itself),
and stays inside the caller's tenant: an unknown subject, or another tenant's, gives the same empty result.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.roles import Capability
from approvals.models import Decision
from audit.actions import AuditAction
from audit.services import audit_record
from escalations.models import Escalation
from notifications.erasure import customer_messages_of, customer_messages_redact
from privacy import vault
from privacy.models import LegalHoldMode, Subject, SubjectRecord
from trustguard.errors import PermissionDenied, ValidationFailed

RECORD = "escalation"


@dataclass(frozen=True)
class SubjectQuery:
    kind: str  # email | phone | entity_id
    value: str

    def commitment(self) -> str:
        """What the audit trail keeps of the query: a keyed hash (the blind index for email and phone)."""
        if self.kind in ("email", "phone"):
            return vault.blind_index(self.kind, self.value) or _hmac(self.kind, self.value)
        return _hmac(self.kind, self.value)


def _hmac(kind: str, value: str) -> str:
    key = hashlib.sha256(b"trustguard:blind-index:" + settings.BLIND_INDEX_KEY.encode()).digest()
    return hmac.new(key, f"{kind}:{value.strip()}".encode(), hashlib.sha256).hexdigest()


def subject_query(*, email: str = "", phone: str = "", entity_id: str = "") -> SubjectQuery:
    """Exactly one of email, phone, entity_id (400 otherwise)."""
    given = {k: str(v).strip() for k, v in (("email", email), ("phone", phone), ("entity_id", entity_id)) if v}
    if len(given) != 1:
        raise ValidationFailed("name the subject by exactly one of email, phone, entity_id",
                               errors={"subject": ["Give exactly one of email, phone, entity_id."]})
    kind, value = next(iter(given.items()))
    if len(value) > 254:
        raise ValidationFailed(f"{kind} is too long", errors={kind: ["At most 254 characters."]})
    return SubjectQuery(kind=kind, value=value)


def _require(actor: Actor) -> None:
    if not actor.can(Capability.PRIVACY_MANAGE):
        raise PermissionDenied("this needs privacy.manage", slug="missing-capability")


def _found(actor: Actor, query: SubjectQuery) -> tuple[list[Subject], list[Escalation]]:
    """The live subjects the query names in the actor's tenant, and every case holding their data."""
    tenant_id = actor.tenant.pk
    if query.kind == "entity_id":
        # The entity's customer(s): the subjects whose keys seal these cases' contact and payload (not whoever
        # requested them: a requester is a subject of their own, found by their email).
        rows = list(Escalation.objects.filter(tenant_id=tenant_id, source_entity_id=query.value)
                    .values_list("pk", "contact", "payload"))
        ids = [pk for pk, _, _ in rows]
        sealed_by = {vault.subject_id_of(v) for _, contact, payload in rows
                     for v in [contact, *((payload or {}).values() if isinstance(payload, dict) else [])]} - {""}
        subjects = list(Subject.objects.filter(tenant_id=tenant_id, erased_at__isnull=True, held_until__isnull=True,
                                               pk__in=sealed_by))
    else:
        subjects = [s for s in vault.subjects_find(tenant_id=tenant_id, **{query.kind: query.value})
                    if s.held_until is None]
        ids = []
    record_ids = set(SubjectRecord.objects.filter(subject__in=subjects, record_type=RECORD)
                     .values_list("record_id", flat=True)) | {str(i) for i in ids}
    cases = list(Escalation.objects.filter(tenant_id=tenant_id, pk__in=record_ids).order_by("created_at", "pk"))
    return subjects, cases


# --- legal holds ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hold:
    escalation: str
    type: str
    until: datetime | None  # None: the case is still open (held until it closes, plus the retention period)
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"escalation": self.escalation, "type": self.type,
                "until": self.until.isoformat() if self.until else None, "reason": self.reason}


def holds_on(cases: list[Escalation], *, tenant_id: int, now: datetime | None = None) -> list[Hold]:
    """Cases that are AML records still inside their retention period (docs/PRIVACY.md "Legal holds")."""
    now = now or timezone.now()
    policy = vault.settings_for(tenant_id)
    aml_types = set(policy.aml_types or [])
    years = round(policy.aml_retention_days / 365, 1)
    holds = []
    for case in cases:
        if case.type not in aml_types:
            continue
        until = case.closed_at + timedelta(days=policy.aml_retention_days) if case.closed_at else None
        if until is None or until > now:
            holds.append(Hold(escalation=str(case.pk), type=case.type, until=until,
                              reason=f"{case.type} is an AML/CTF record: kept {years:g} years after the case closes"
                                     + ("" if until else " (still open)")))
    return holds


# --- export ------------------------------------------------------------------------------------------------

def _requested_by_if_theirs(case: Escalation, subjects: vault.Subjects, ids: set[str]) -> str | None:
    """The sealed requester's email of a case when the exported subject is that requester."""
    for record in SubjectRecord.objects.filter(record_type=RECORD, record_id=str(case.pk), subject_id__in=ids):
        sealed = (record.sealed or {}).get("requested_by")
        if sealed is not None and vault.is_sealed(sealed):
            try:
                return str(vault.unseal(sealed, field="requested_by", subjects=subjects))
            except vault.FieldUnreadable as exc:
                return str(exc)
    return None


def _case_document(case: Escalation, subjects: vault.Subjects, ids: set[str]) -> dict[str, Any]:
    try:
        contact: Any = vault.open_contact(case.contact, subjects=subjects)
    except vault.FieldUnreadable as exc:
        contact = {"unreadable": str(exc)}
    decisions = Decision.objects.filter(request_id=case.approval_id).select_related("decided_by").order_by("decided_at")
    return {
        "id": str(case.pk), "type": case.type, "status": case.status, "reason": case.reason,
        "source": {"system": case.source_system, "entity_type": case.source_entity_type,
                   "entity_id": case.source_entity_id},
        "amount": {"value_minor": case.amount_minor, "currency": case.currency} if case.amount_minor is not None else None,
        "contact": contact,
        "requested_by": _requested_by_if_theirs(case, subjects, ids),
        "payload": vault.payload_for_display(case.payload, reveal=True, subjects=subjects),
        "created_at": case.created_at.isoformat(), "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "decisions": [{"decision": d.decision, "role": d.role, "justification": d.justification,
                       "decided_at": d.decided_at.isoformat()} for d in decisions],
    }


def subject_export(*, actor: Actor, query: SubjectQuery) -> dict[str, Any]:
    """Everything held about the subject in the actor's tenant, as one JSON document; audited."""
    _require(actor)
    with transaction.atomic():
        subjects, cases = _found(actor, query)
        cache = vault.Subjects(subjects)
        document = {
            "tenant": actor.tenant.slug, "generated_at": timezone.now().isoformat(), "generated_by": actor.actor_label,
            "query": {"by": query.kind, "value": query.value},
            "subjects": [{"id": str(s.pk), "created_at": s.created_at.isoformat(),
                          "identifiers": sorted(s.identifiers.values_list("kind", flat=True))} for s in subjects],
            "escalations": [_case_document(c, cache, {str(s.pk) for s in subjects}) for c in cases],
            "messages": customer_messages_of(tenant_id=actor.tenant.pk, escalation_ids=[str(c.pk) for c in cases]),
            "legal_holds": [h.as_dict() for h in holds_on(cases, tenant_id=actor.tenant.pk)],
        }
        audit_record(tenant_id=actor.tenant.pk, action=AuditAction.PRIVACY_SUBJECT_EXPORTED, actor=actor,
                     target_type="subject", target_id=query.commitment()[:64],
                     details={"by": query.kind, "subjects": [str(s.pk) for s in subjects],
                              "escalations": len(cases)})
    return document


# --- erasure -------------------------------------------------------------------------------------------------

@dataclass
class ErasureResult:
    status: str  # erased | refused | nothing
    subjects: list[str] = field(default_factory=list)
    escalations: list[str] = field(default_factory=list)
    held: list[Hold] = field(default_factory=list)
    pseudonymised: list[str] = field(default_factory=list)
    messages_redacted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "subjects": self.subjects, "escalations": self.escalations,
                "legal_holds": [h.as_dict() for h in self.held], "pseudonymised": self.pseudonymised,
                "messages_redacted": self.messages_redacted}


def _reseal_under(case: Escalation, old: vault.Subjects, erasing: set[str], new: Subject) -> None:
    """Move a held case's values sealed under an erased subject's key (contact, payload fields, the requester's
    email) to its hold subject's key; values of other subjects stay as they are."""
    def mine(value: Any) -> bool:
        return vault.is_sealed(value) and vault.subject_id_of(value) in erasing

    def moved(value: Any, field: str) -> dict[str, str]:
        return vault.seal(new, vault.unseal(value, field=field, subjects=old), field=field)

    contact = moved(case.contact, "contact") if mine(case.contact) else case.contact
    payload = {k: moved(v, f"payload.{k}") if mine(v) else v for k, v in (case.payload or {}).items()}
    Escalation.objects.filter(pk=case.pk).update(contact=contact, payload=payload)
    vault.record_link(subject=new, record_type=RECORD, record_id=case.pk)
    for record in SubjectRecord.objects.filter(record_type=RECORD, record_id=str(case.pk), subject_id__in=erasing):
        sealed = (record.sealed or {}).get("requested_by")
        if sealed is not None and mine(sealed):
            SubjectRecord.objects.filter(subject=new, record_type=RECORD, record_id=str(case.pk)).update(
                sealed={"requested_by": moved(sealed, "requested_by")})


@transaction.atomic
def subject_erase(*, actor: Actor, query: SubjectQuery) -> ErasureResult:
    """Crypto-shred the subject's data key, unless a legal hold stands (docs/PRIVACY.md).

    1. Find the subjects and every case holding their data; lock the subjects.
    2. Holds: under the tenant's `refuse` mode any hold refuses the whole erasure (nothing changes, the
       refusal is audited); under `pseudonymise` the held cases are re-sealed under a new, identifier-less
       subject kept until the hold ends (then privacy_sweep_holds shreds it).
    3. Destroy each subject's wrapped key and identifiers; redact messages sent to the customer.
    4. Audit with commitments only (subject ids, counts, the query's keyed hash).
    """
    _require(actor)
    subjects, cases = _found(actor, query)
    subjects = list(Subject.objects.select_for_update().filter(pk__in=[s.pk for s in subjects]).order_by("pk"))
    tenant_id = actor.tenant.pk
    holds = holds_on(cases, tenant_id=tenant_id)
    mode = vault.settings_for(tenant_id).legal_hold_mode
    result = ErasureResult(status="nothing", held=holds)
    details: dict[str, Any] = {"by": query.kind, "mode": mode, "held": [h.escalation for h in holds]}
    if not subjects:
        pass
    elif holds and mode == LegalHoldMode.REFUSE:
        result.status = "refused"
    else:
        cache = vault.Subjects(subjects)
        held_ids = {h.escalation for h in holds}
        free = [str(c.pk) for c in cases if str(c.pk) not in held_ids]
        for subject in subjects:
            mine = set(SubjectRecord.objects.filter(subject=subject, record_type=RECORD)
                       .values_list("record_id", flat=True))
            held_here = [c for c in cases if str(c.pk) in mine and str(c.pk) in held_ids]
            if held_here:
                ends = [h.until for h in holds if h.escalation in {str(c.pk) for c in held_here}]
                # An open case's hold ends with the case plus the retention: until then, a far date the sweep
                # re-checks (privacy_sweep_holds recomputes from the case before shredding).
                hold_until = max([e for e in ends if e] or [timezone.now() + timedelta(days=365 * 100)])
                keeper = Subject.objects.create(tenant_id=tenant_id, held_until=hold_until,
                                                wrapped_key=_fresh_wrapped_key())
                for case in held_here:
                    _reseal_under(case, cache, {str(subject.pk)}, keeper)
                result.pseudonymised += [str(c.pk) for c in held_here]
            vault.subject_erase_key(subject)
        result.status = "erased"
        result.subjects = [str(s.pk) for s in subjects]
        result.escalations = [str(c.pk) for c in cases]
        result.messages_redacted = customer_messages_redact(tenant_id=tenant_id, escalation_ids=free)
    details.update({"status": result.status, "subjects": [str(s.pk) for s in subjects],
                    "escalations": len(cases), "pseudonymised": result.pseudonymised,
                    "messages_redacted": result.messages_redacted})
    audit_record(tenant_id=tenant_id, action=_ERASE_ACTIONS[result.status], actor=actor,
                 target_type="subject", target_id=query.commitment()[:64], details=details)
    return result


_ERASE_ACTIONS = {"erased": AuditAction.PRIVACY_SUBJECT_ERASED, "refused": AuditAction.PRIVACY_SUBJECT_ERASE_REFUSED,
                  "nothing": AuditAction.PRIVACY_SUBJECT_ERASE_NOTHING}


def _fresh_wrapped_key() -> str:
    from cryptography.fernet import Fernet

    from trustguard import crypto

    return crypto.encrypt(Fernet.generate_key().decode())


class PrivacyOperator(Actor):
    """A console operator or the nightly job: a system actor holding privacy.manage (audited as system:<name>)."""

    def can(self, capability: str) -> bool:
        return capability == Capability.PRIVACY_MANAGE


def subject_holds_sweep_all(*, system: str, now: datetime | None = None) -> int:
    """Every tenant's ended holds shredded (`privacy_sweep_holds`, the nightly `subjects.sweep_holds`); the count."""
    from accounts.models import Tenant

    return sum(subject_holds_sweep(actor=PrivacyOperator(tenant=tenant, system=system), now=now)
               for tenant in Tenant.objects.order_by("pk"))


@transaction.atomic
def subject_holds_sweep(*, actor: Actor, now: datetime | None = None) -> int:
    """Shred the pseudonymised subjects whose legal hold has ended; the count shredded."""
    now = now or timezone.now()
    due = list(Subject.objects.select_for_update(skip_locked=True)
               .filter(tenant=actor.tenant, held_until__lte=now, erased_at__isnull=True).order_by("pk")[:500])
    shredded = []
    for subject in due:
        ids = list(SubjectRecord.objects.filter(subject=subject, record_type=RECORD).values_list("record_id", flat=True))
        cases = list(Escalation.objects.filter(pk__in=ids))
        if holds_on(cases, tenant_id=subject.tenant_id, now=now):
            continue  # a case reopened or never closed: its hold stands
        vault.subject_erase_key(subject)
        customer_messages_redact(tenant_id=subject.tenant_id, escalation_ids=ids)
        shredded.append(str(subject.pk))
    if shredded:
        audit_record(tenant_id=actor.tenant.pk, action=AuditAction.PRIVACY_HOLD_ENDED_ERASED, actor=actor,
                     target_type="subject", target_id="", details={"subjects": shredded})
    return len(shredded)


# --- reveal ---------------------------------------------------------------------------------------------------

@transaction.atomic
def values_reveal(*, actor: Actor, escalation: Escalation) -> tuple[list[vault.FieldView], dict[str, Any]]:
    """The full contact and personal payload of one case, for a person with privacy.manage; audited (field
    names only, never values)."""
    _require(actor)
    subjects = vault.Subjects()
    contact = vault.contact_views(escalation.contact, reveal=True, subjects=subjects)
    payload = vault.payload_for_display(escalation.payload, reveal=True, subjects=subjects)
    audit_record(tenant_id=escalation.tenant_id, action=AuditAction.PRIVACY_VALUES_REVEALED, actor=actor,
                 target_type="escalation", target_id=escalation.pk,
                 details={"fields": [f.field for f in contact if not f.error]
                          + [f"payload.{k}" for k in vault.sealed_payload_fields(escalation.payload)]})
    return contact, payload
