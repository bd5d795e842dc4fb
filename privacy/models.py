"""Data subjects (a tenant's customers) and the data keys their personal fields are sealed under.

Envelope encryption: each subject has its own Fernet data key, stored only wrapped by the field keys
(trustguard.crypto, TRUSTGUARD_FIELD_KEYS). Erasing a subject destroys the wrapped key: every value sealed
under it (in escalations, payload copies, backups of them) becomes unreadable at once, without touching the
rows that hold it, and without touching the audit chain (which never holds plaintext personal data).
"""

from __future__ import annotations

from django.db import models

from trustguard.ids import uuid7


class Subject(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    # crypto.encrypt() of the subject's Fernet data key; "" once the subject is erased (crypto-shredded).
    wrapped_key = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    # Pseudonymised under a legal hold: no identifier links to it any more (search and export do not find it),
    # its data stays readable for the record keeper until `held_until`, then `privacy_sweep_holds` shreds it.
    held_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="privacy_subject_tenant_idx"),
                   models.Index(fields=["held_until"], name="privacy_subject_hold_idx",
                                condition=models.Q(held_until__isnull=False, erased_at__isnull=True))]

    def __str__(self) -> str:
        return f"subject {self.pk}" + (" (erased)" if self.erased_at else "")


class SubjectIdentifier(models.Model):
    """A keyed blind index (HMAC) of a subject's email or phone: finds the subject without the plaintext."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        PHONE = "phone"

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="identifiers")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    digest = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "kind", "digest"], name="privacy_identifier_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.digest[:12]}…"


class SubjectRecord(models.Model):
    """A record that holds values sealed under the subject's key (e.g. an escalation)."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="records")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    record_type = models.CharField(max_length=32)
    record_id = models.CharField(max_length=64)
    # Values of the record sealed here rather than in its own row (the requester's email of an escalation, whose
    # column is too short for a sealed value): {"requested_by": {"$sealed": ...}}.
    sealed = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject", "record_type", "record_id"],
                                               name="privacy_record_unique")]
        indexes = [models.Index(fields=["tenant", "record_type", "record_id"], name="privacy_record_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.record_type}:{self.record_id}"


class LegalHoldMode(models.TextChoices):
    REFUSE = "refuse", "Refuse the erasure, naming the held records"
    PSEUDONYMISE = "pseudonymise", "Erase what is free, pseudonymise what is held, shred it when the hold ends"


DEFAULT_AML_TYPES = ["SMR", "SANCTIONS_MATCH", "HIGH_RISK_CDD", "HIGH_VALUE", "VENDOR_FLAGGED"]
DEFAULT_PERSONAL_PAYLOAD_FIELDS = ["customer_name", "customer_email", "customer_phone", "date_of_birth",
                                   "address", "bvn", "nin", "id_number", "account_holder"]


def default_aml_types() -> list[str]:
    return list(DEFAULT_AML_TYPES)


def default_personal_payload_fields() -> list[str]:
    return list(DEFAULT_PERSONAL_PAYLOAD_FIELDS)


class PrivacySettings(models.Model):
    """A tenant's data-protection policy (docs/PRIVACY.md). No row: the defaults below."""

    tenant = models.OneToOneField("accounts.Tenant", on_delete=models.CASCADE, related_name="privacy_settings")
    legal_hold_mode = models.CharField(max_length=16, choices=LegalHoldMode.choices, default=LegalHoldMode.REFUSE)
    # Record keeping (AML/CTF Act 2006 s107, MLPPA 2022 s8(1)): how long after a case closes its record is kept.
    aml_retention_days = models.PositiveIntegerField(default=7 * 365 + 2)
    aml_types = models.JSONField(default=default_aml_types, blank=True,
                                 help_text="Escalation types whose cases are AML records (legal hold).")
    personal_payload_fields = models.JSONField(
        default=default_personal_payload_fields, blank=True,
        help_text="Top-level payload keys holding personal data: sealed like the contact.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "privacy settings"

    def __str__(self) -> str:
        return f"privacy settings of {self.tenant_id}"
