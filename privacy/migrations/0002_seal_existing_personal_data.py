"""Seal the personal data already stored in plaintext: every escalation's customer contact, the payload fields
the tenant's privacy settings mark as personal (the defaults, as no tenant has settings yet), and the requester's
email where a source named someone outside the tenant (its approval request then keeps a blind index for the
four-eyes rule), under each person's data key (privacy.vault), with their blind indexes. Both engines; in
batches by primary key.

Not reversible into plaintext on purpose: going back leaves the sealed values (the previous code shows them as
an empty contact), rather than writing personal data out again.
"""

from django.db import migrations

BATCH = 500


def seal_existing(apps, schema_editor):
    from privacy import vault

    Escalation = apps.get_model("escalations", "Escalation")
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    Membership = apps.get_model("accounts", "Membership")
    last = None
    while True:
        rows = Escalation.objects.order_by("pk").only("pk", "tenant_id", "contact", "payload", "approval_id",
                                                      "requested_by_user_id", "requested_by_email")
        if last is not None:
            rows = rows.filter(pk__gt=last)
        batch = list(rows[:BATCH])
        if not batch:
            return
        for case in batch:
            contact = case.contact if isinstance(case.contact, dict) and not vault.is_sealed(case.contact) else {}
            payload = case.payload if isinstance(case.payload, dict) else {}
            sealed = vault.seal_case(tenant_id=case.tenant_id, contact=contact, payload=payload)
            if sealed.subject is not None:
                Escalation.objects.filter(pk=case.pk).update(
                    contact=sealed.contact or case.contact, payload=sealed.payload)
                vault.record_link(subject=sealed.subject, record_type="escalation", record_id=case.pk)
            email = (case.requested_by_email or "").strip()
            if (case.requested_by_user_id is None and email and email != vault.SEALED_REQUESTER
                    and not Membership.objects.filter(tenant_id=case.tenant_id, user__email__iexact=email).exists()):
                mark = vault.requester_seal(tenant_id=case.tenant_id, record_type="escalation", record_id=case.pk,
                                            email=email)
                Escalation.objects.filter(pk=case.pk).update(requested_by_email=vault.SEALED_REQUESTER)
                ApprovalRequest.objects.filter(pk=case.approval_id).update(requester_email=mark)
        last = batch[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ("privacy", "0001_initial"),
        ("escalations", "0004_deferral_bounds"),
        ("approvals", "0006_sqlite_triggers_after_rebuild"),
        ("accounts", "0005_privacy_manage_capability"),
    ]

    operations = [migrations.RunPython(seal_existing, migrations.RunPython.noop)]
