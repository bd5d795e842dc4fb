"""Tenants, people, memberships, role groups and credentials."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.db.models.functions import Lower
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex
from simple_history.models import HistoricalRecords

from trustguard import crypto
from trustguard.money import DEFAULT_LOCALE, validate_locale
from trustguard.zones import validate_time_zone

from .config_queryset import ConfigQuerySet
from .roles import Capability, codename


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
    # The language of its people's pages and messages unless a person chose their own (User.language), and
    # of what its customers are told. Blank: the site's (settings.LANGUAGE_CODE).
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES,
                                help_text="Pages and messages for people who chose no language, and customers' messages.")
    # Where its people read times (pages, messages, quiet hours, the dates of an absence) unless a person chose
    # their own (User.time_zone): accounts.selectors.zone_of. Blank: the site's (settings.TIME_ZONE).
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="", validators=[validate_time_zone],
                                 help_text="e.g. Africa/Lagos: times in its people's pages and messages, unless a "
                                           "person chose their own. Blank: the site's.")
    created_at = models.DateTimeField(auto_now_add=True)
    # Changes with every change of the tenant's cached configuration (accounts.tenant_config), in that change's
    # transaction: a new random number each time, so that a rolled-back change never leaves a number reused.
    config_generation = models.BigIntegerField(default=0, db_default=0, editable=False)
    history = HistoricalRecords(excluded_fields=["config_generation"])

    class Meta:
        ordering = ["slug"]
        permissions = [(codename(c.value), c.label) for c in Capability]

    def __str__(self) -> str:
        return self.slug


class User(AbstractUser):
    email = models.EmailField("email address")
    # E.164 (+2348031234567); normalised by accounts.phones on the way in.
    phone_number = models.CharField(max_length=20, blank=True)
    # The person's language for pages and messages (settings in the dashboard); blank: their tenant's.
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)
    # The person's time zone for pages, messages and quiet hours; blank: their tenant's (accounts.selectors.zone_of).
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="", validators=[validate_time_zone])

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique", condition=~models.Q(email="")),
        ]


class Membership(models.Model):
    """A person holds a role in a tenant. One person may hold roles in several tenants."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    # A built-in role (roles.Role) or one of the tenant's custom roles: selectors.tenant_roles says which.
    role = models.CharField(max_length=32)
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
    role = models.CharField(max_length=32)  # built-in or custom (selectors.tenant_roles)
    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="tenant_role")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "role"], name="tenant_role_group_unique")]

    def __str__(self) -> str:
        return f"{self.tenant.slug}:{self.role}"


class CustomRole(models.Model):
    """A role a tenant adds to the six built-ins (e.g. finance_director): named in routes, ladders and
    memberships like a built-in one; its capabilities are guardian grants to its TenantRoleGroup."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="custom_roles")
    key = models.CharField(max_length=32, help_text="What policies and memberships name, e.g. finance_director.")
    label = models.CharField(max_length=100, help_text="How people read it, e.g. Finance director.")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["tenant", "key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="custom_role_unique")]

    def __str__(self) -> str:
        return f"{self.tenant.slug}:{self.key}"


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


def new_sealed_totp_key() -> str:
    """A fresh 20-byte TOTP seed (django-otp's default), encrypted under the field keys."""
    return crypto.encrypt(random_hex(20))


class SealedTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """django-otp's TOTP device with its seed encrypted under the field keys (TRUSTGUARD_FIELD_KEYS).

    django-otp's TOTPDevice keeps the seed in clear, so whoever reads a backup could mint every approver's
    codes. This is the same device (same fields, and django-otp's own verify_token and config_url), except
    that `key` (hex, as in TOTPDevice) is a property over `key_encrypted`. Rows of TOTPDevice were moved
    here, encrypted, by migration 0002 (reversible).
    """

    key_encrypted = models.TextField(default=new_sealed_totp_key, editable=False)
    step = models.PositiveSmallIntegerField(default=30, help_text="The time step in seconds.")
    t0 = models.BigIntegerField(default=0, help_text="The Unix time at which to begin counting steps.")
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1, help_text="Time steps in the past or future to allow.")
    drift = models.SmallIntegerField(default=0, help_text="Time steps the prover deviates from our clock.")
    last_t = models.BigIntegerField(default=-1, help_text="The time step of the latest verified token.")

    class Meta(Device.Meta):
        verbose_name = "authenticator (TOTP)"

    @property
    def key(self) -> str:
        """The seed, hex (TOTPDevice's format). Raises crypto.SecretUnreadable when the field key is not configured."""
        return crypto.decrypt(self.key_encrypted)

    @key.setter
    def key(self, value: str) -> None:
        bytes.fromhex(value)  # hex, as django-otp's key_validator wants: a bad value fails here, not at first use
        self.key_encrypted = crypto.encrypt(value)

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(self.key)

    # django-otp's own TOTP logic, unchanged: it reads the seed through bin_key.
    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings


class Delegation(models.Model):
    """Someone is away from `starts_at` to `ends_at`; `delegate` (or nobody) decides for them meanwhile.

    The rules (90 days at most, no overlap for one delegator, not transitive) are in accounts.delegations.
    Start and end are data, as every deadline here: the sweep (escalations.standins) notices them through
    `started_at` / `ended_at` (set once each), never through a Celery ETA.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="delegations")
    delegator = models.ForeignKey(User, on_delete=models.PROTECT, related_name="delegations_given")
    delegate = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="delegations_received")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # Escalation types covered; empty = every type.
    escalation_types = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Set by the sweep when it has announced the start / the end (each at most once).
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    objects = ConfigQuerySet.as_manager()  # bulk writes replace the tenant's config generation

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="delegation_ends_after_start"),
            models.CheckConstraint(condition=~models.Q(delegate=models.F("delegator")), name="delegation_not_to_self"),
        ]
        indexes = [
            models.Index(fields=["tenant", "starts_at", "ends_at"], name="delegation_period_idx",
                         condition=models.Q(revoked_at__isnull=True)),
            models.Index(fields=["delegator", "ends_at"], name="delegation_delegator_idx"),
            models.Index(fields=["delegate", "ends_at"], name="delegation_delegate_idx",
                         condition=models.Q(delegate__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.delegator} away {self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%Y-%m-%d %H:%M}"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        ACTIVE = "active"
        ENDED = "ended"
        REVOKED = "revoked"

    def status_at(self, now: datetime) -> str:
        """scheduled, active, ended or revoked (revoked before it ended on its own)."""
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if now < self.starts_at:
            return self.Status.SCHEDULED
        return self.Status.ACTIVE if now < self.ends_at else self.Status.ENDED

    def covers(self, escalation_type: str) -> bool:
        return not self.escalation_types or escalation_type in self.escalation_types
