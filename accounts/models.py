"""Tenants, people, memberships, role groups and credentials."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.db.models.functions import Lower
from simple_history.models import HistoricalRecords

from trustguard.money import DEFAULT_LOCALE, validate_locale

from .roles import Capability, Role, codename


class Tenant(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    # Small organisations where one person both requests and approves: allowed, but recorded.
    single_employee_mode = models.BooleanField(default=False)
    # NIST SP 800-63B does not count email as an out-of-band authenticator; a tenant may refuse it.
    email_otp_allowed = models.BooleanField(default=True)
    audit_retention_days = models.PositiveIntegerField(default=7 * 365 + 2)
    # How people of this tenant read money and dates in messages, pages and reports (trustguard.money).
    locale = models.CharField(max_length=16, default=DEFAULT_LOCALE, validators=[validate_locale],
                              help_text="e.g. en_NG prints ₦2,500,000.00")
    # What the tenant's customers are told when a review ends; blank = the wording in the message template.
    # {entity_type} and {entity_id} are replaced (e.g. "Your {entity_type} {entity_id} has been approved.").
    customer_approved_text = models.CharField(max_length=300, blank=True, help_text=(
        "Told to the customer when their request is approved. Blank: \"Your order ORD-1 has been approved.\" "
        "{entity_type} and {entity_id} are filled in."))
    customer_rejected_text = models.CharField(max_length=300, blank=True, help_text=(
        "Told to the customer when their request is rejected. Blank: \"Your order ORD-1 has been rejected.\" "
        "{entity_type} and {entity_id} are filled in."))
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]
        permissions = [(codename(c.value), c.label) for c in Capability]

    def __str__(self) -> str:
        return self.slug


class User(AbstractUser):
    email = models.EmailField("email address")
    # E.164 (+2348031234567); normalised by accounts.phones on the way in.
    phone_number = models.CharField(max_length=20, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique", condition=~models.Q(email="")),
        ]


class Membership(models.Model):
    """A person holds a role in a tenant. One person may hold roles in several tenants."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant", "role"], name="membership_unique")]
        indexes = [models.Index(fields=["tenant", "role", "is_active"], name="membership_role_idx")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.tenant}"


class TenantRoleGroup(models.Model):
    """The auth group of one role in one tenant; capabilities are guardian grants to it on the tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="role_groups")
    role = models.CharField(max_length=32, choices=Role.choices)
    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="tenant_role")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "role"], name="tenant_role_group_unique")]

    def __str__(self) -> str:
        return f"{self.tenant.slug}:{self.role}"


class CredentialBase(models.Model):
    """A bearer secret, stored only as a keyed hash (HMAC-SHA256). The secret is shown once."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters of the secret, to recognise it.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKey(CredentialBase):
    """A source system's key (a vendor's order service, a screening engine)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    history = HistoricalRecords(excluded_fields=["last_used_at"])

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class PersonalToken(CredentialBase):
    """A person's API token for one tenant: acts as that person with that person's roles."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="personal_tokens")
    history = HistoricalRecords(excluded_fields=["last_used_at"])

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.prefix}…)"


class StepUpState(models.Model):
    """Per-person second-factor state. Verifications lock this row, so one code counts at most once."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="stepup_state")
    failures = models.PositiveSmallIntegerField(default=0)
    window_started_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"step-up state of {self.user_id}"


class OtpChallenge(models.Model):
    """A one-time code sent by email or SMS, bound to one person, one subject and its content."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        SMS = "sms"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="otp_challenges")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    subject_type = models.CharField(max_length=32)
    subject_id = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    code_digest = models.CharField(max_length=64)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "subject_type", "subject_id"], name="otp_challenge_subject_idx")]

    def __str__(self) -> str:
        return f"challenge for {self.user_id} on {self.subject_type}:{self.subject_id}"
