"""Seal the personal data already stored in plaintext: every escalation's customer contact, and the payload
fields the tenant's privacy settings mark as personal (the defaults, as no tenant has settings yet), under each
customer's data key (privacy.vault), with their blind indexes. Both engines; in batches by primary key.

Not reversible into plaintext on purpose: going back leaves the sealed values (the previous code shows them as
an empty contact), rather than writing personal data out again.
"""

from django.db import migrations

BATCH = 500


def seal_existing(apps, schema_editor):
    from privacy import vault

    Escalation = apps.get_model("escalations", "Escalation")
    last = None
    while True:
        rows = Escalation.objects.order_by("pk").only("pk", "tenant_id", "contact", "payload")
        if last is not None:
            rows = rows.filter(pk__gt=last)
        batch = list(rows[:BATCH])
        if not batch:
            return
        for case in batch:
            contact = case.contact if isinstance(case.contact, dict) and not vault.is_sealed(case.contact) else {}
            payload = case.payload if isinstance(case.payload, dict) else {}
            sealed = vault.seal_case(tenant_id=case.tenant_id, contact=contact, payload=payload)
            if sealed.subject is None:
                continue
            Escalation.objects.filter(pk=case.pk).update(
                contact=sealed.contact or case.contact, payload=sealed.payload)
            vault.record_link(subject=sealed.subject, record_type="escalation", record_id=case.pk)
        last = batch[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ("privacy", "0001_initial"),
        ("escalations", "0004_deferral_bounds"),
    ]

    operations = [migrations.RunPython(seal_existing, migrations.RunPython.noop)]
