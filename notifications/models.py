"""The transactional outbox: versioned events written in the business transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from trustguard.crypto import decrypt
from trustguard.ids import uuid7


class OutboxEvent(models.Model):
    """One domain event. Written with the change; relayed to subscribers after commit."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid7, unique=True, editable=False)
    # No index: nothing reads the outbox by tenant (the relay reads by id, history by aggregate), and every
    # event written would pay for one. Deleting a tenant (PROTECT) scans the table once, which is rare.
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    type = models.CharField(max_length=64)
    version = models.PositiveSmallIntegerField(default=1)
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    relayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The relay's queue: only unrelayed rows are indexed, so the index stays tiny.
            models.Index(fields=["id"], name="outbox_unrelayed_idx", condition=models.Q(relayed_at__isnull=True)),
            models.Index(fields=["aggregate_type", "aggregate_id", "id"], name="outbox_aggregate_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.aggregate_type}:{self.aggregate_id}"

    def envelope(self) -> dict[str, object]:
        """The wire format of CONTRACT.md: {id, type, version, occurred_at, tenant, data}."""
        return {
            "id": str(self.event_id),
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "tenant": self.tenant.slug,
            "data": self.data,
        }


class Channel(models.TextChoices):
    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"
    PUSH = "push"  # Web Push to each browser the person enabled (PushSubscription)


def _history_user(request: Any = None, **kwargs: Any) -> Any:
    """The person behind a change, for simple-history: behind DRF, request.user is an accounts Actor
    (its `user` is the person, None for an API key), which history_user cannot hold."""
    user = getattr(request, "user", None)
    return user if isinstance(user, models.Model) else getattr(user, "user", None)


class WebhookEndpoint(models.Model):
    """A tenant's receiver of signed events (Standard Webhooks). The secret is encrypted at rest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    # Event types to receive; empty = all. "escalation.*" matches every escalation event.
    event_types = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=200, blank=True)
    # Fernet token of the whsec_ secret: we must sign with it, so it is encrypted, never hashed.
    secret_encrypted = models.TextField(editable=False)
    secret_prefix = models.CharField(max_length=16, editable=False, help_text="To recognise the secret, not to use it.")
    # After a rotation the old secret also signs until this time, so receivers can switch without loss.
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Field-level history for operators (who changed what, when); never the (encrypted) secrets.
    history = HistoricalRecords(excluded_fields=["secret_encrypted", "previous_secret_encrypted"],
                                get_user=_history_user)

    class Meta:
        ordering = ["tenant", "created_at"]
        indexes = [models.Index(fields=["tenant", "is_active"], name="webhook_tenant_active_idx")]

    def __str__(self) -> str:
        return f"{self.url} ({self.tenant_id})"

    def wants(self, event_type: str) -> bool:
        if not self.event_types:
            return True
        for pattern in self.event_types:
            if pattern == event_type or (pattern.endswith(".*") and event_type.startswith(pattern[:-1])):
                return True
        return False


class ChannelPreference(models.Model):
    """A person's opt-out of one channel (no row = the channel is on)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="channel_preferences")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "channel"], name="channel_preference_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.channel} {'on' if self.enabled else 'off'}"


class Message(models.Model):
    """One personal message (email, SMS or in-app inbox item), rendered when it was queued."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    purpose = models.CharField(max_length=64, help_text="The event type, or e.g. otp_challenge.")
    audience = models.CharField(max_length=16, blank=True, help_text="approver, requester, customer, ...")
    event = models.ForeignKey(OutboxEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="messages")
    to_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    # For a sensitive message (a one-time code) the body is encrypted and blanked once delivered.
    body = models.TextField(blank=True)
    # An email's HTML part (the text part is `body`); empty for other channels and for plain-text emails.
    body_html = models.TextField(blank=True)
    sensitive = models.BooleanField(default=False)
    valid_until = models.DateTimeField(null=True, blank=True,
                                       help_text="When it stops being of use (a one-time code's expiry): not sent "
                                                 "or retried after that.")
    data = models.JSONField(default=dict, blank=True, help_text="Links for the in-app inbox (e.g. the escalation id).")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # An inbox item that asked for something (data.action) is done once what it asked about has closed.
    done_at = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=32, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    cost = models.DecimalField(max_digits=10, decimal_places=5, null=True, blank=True)
    cost_currency = models.CharField(max_length=3, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The inbox and its unread count.
            models.Index(fields=["user", "tenant", "-created_at"], name="message_inbox_idx",
                         condition=models.Q(channel="in_app")),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.purpose} {self.id}"

    def of_use_at(self, when: datetime) -> bool:
        """Is it still worth sending at `when` (before its `valid_until`, when it has one)?"""
        return self.valid_until is None or when < self.valid_until

    def readable_body(self) -> str:
        """The body to send or show (decrypted when sensitive; blank once a sensitive one is delivered)."""
        if self.sensitive and self.body:
            return decrypt(self.body)
        return self.body


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead", "Dead letter"


class Delivery(models.Model):
    """One event (or message) to one target: attempts, backoff, the last error, dead letter."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email"
        SMS = "sms"
        PUSH = "push"

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    event = models.ForeignKey(OutboxEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="deliveries")
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="delivery")
    # Ordering: deliveries with the same order_key and aggregate go out in event order.
    order_key = models.CharField(max_length=300, blank=True)
    aggregate_key = models.CharField(max_length=140, blank=True)
    event_seq = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    replays = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_event_endpoint_unique",
                                    condition=models.Q(endpoint__isnull=False)),
            models.CheckConstraint(
                condition=(models.Q(kind="webhook") & models.Q(endpoint__isnull=False) & models.Q(event__isnull=False))
                | (~models.Q(kind="webhook") & models.Q(message__isnull=False)),
                name="delivery_target_matches_kind",
            ),
        ]
        indexes = [
            # The due queue: only pending rows are indexed.
            models.Index(fields=["next_attempt_at", "id"], name="delivery_due_idx", condition=models.Q(status="pending")),
            # The ordering check: earlier pending deliveries of the same target and aggregate.
            models.Index(fields=["order_key", "aggregate_key", "event_seq"], name="delivery_order_idx",
                         condition=models.Q(status="pending")),
            models.Index(fields=["status", "dead_at"], name="delivery_dead_idx", condition=models.Q(status="dead")),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} {self.kind} {self.status}"


class PushSubscription(models.Model):
    """One browser on one device that accepts Web Push for a person (the browser's PushSubscription).

    The endpoint and its keys are a capability to message that browser (and tell which push account it uses):
    personal data of the person, encrypted at rest with the field keys (trustguard.crypto, rotated with
    rotate_field_keys), never shown. What is shown is the push service (the endpoint's origin) and the device.
    A person's subscriptions serve every tenant they belong to, as their email address does.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    # SHA-256 of the endpoint: one row per browser subscription (whoever enables push last on a shared browser
    # takes it over, so the previous person's notifications stop going there).
    endpoint_digest = models.CharField(max_length=64, unique=True, editable=False)
    push_service = models.CharField(max_length=200, editable=False,
                                    help_text="The endpoint's origin, e.g. https://fcm.googleapis.com.")
    subscription_encrypted = models.TextField(editable=False)
    device = models.CharField(max_length=120, blank=True, help_text="e.g. Chrome on Android, from the browser.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="push_subscription_user_idx")]

    def __str__(self) -> str:
        return f"{self.device or 'a browser'} via {self.push_service}"

# --- Who wants what, when (notifications/preferences.py) ----------------------------------------------------------


def _default_time_zone() -> str:
    return str(settings.TIME_ZONE)


# The time zones moved to accounts (User.time_zone, Tenant.time_zone: accounts.selectors.zone_of), copied there by
# migration 0011. The two columns below are read and written by nothing; they stay one release so that the previous
# release keeps working during a rolling deploy (docs/DEPLOYMENT.md, "Zero-downtime deploys"), then go.


class QuietHoursChoice(models.TextChoices):
    DEFAULT = "default", "My organisation's default"
    OFF = "off", "None: notify me at any time"
    CUSTOM = "custom", "My own quiet hours"


class PersonNotificationSettings(models.Model):
    """A person's quiet hours (their channels are ChannelPreference rows; their time zone is User.time_zone). No row:
    the defaults of the tenant a message comes from."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings")
    quiet_hours = models.CharField(max_length=8, choices=QuietHoursChoice.choices, default=QuietHoursChoice.DEFAULT)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True, editable=False)  # unused: see above
    critical_override = models.BooleanField(default=True, help_text="Critical escalations reach me in quiet hours.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "person notification settings"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(quiet_hours="custom") | (models.Q(quiet_start__isnull=False)
                                                            & models.Q(quiet_end__isnull=False)),
                name="person_quiet_hours_complete"),
        ]

    def __str__(self) -> str:
        return f"notification settings of {self.user_id}"


class TenantNotificationDefaults(models.Model):
    """A tenant's defaults for people who have not chosen: quiet hours, channels off (its time zone is Tenant's)."""

    tenant = models.OneToOneField("accounts.Tenant", on_delete=models.CASCADE, related_name="notification_defaults")
    time_zone = models.CharField(max_length=64, default=_default_time_zone, editable=False)  # unused: see above
    quiet_hours_enabled = models.BooleanField(default=False)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    critical_override = models.BooleanField(default=True, help_text="Critical escalations go through quiet hours.")
    channels_off = models.JSONField(default=list, blank=True,
                                    help_text="Channels off for people who have not chosen (e.g. [\"sms\"]).")
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(get_user=_history_user)

    class Meta:
        verbose_name = verbose_name_plural = "tenant notification defaults"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quiet_hours_enabled=False) | (models.Q(quiet_start__isnull=False)
                                                                & models.Q(quiet_end__isnull=False)),
                name="tenant_quiet_hours_complete"),
        ]

    def __str__(self) -> str:
        return f"notification defaults of {self.tenant_id}"


class MessageTemplate(models.Model):
    """A tenant's own wording of a message, replacing the file template notifications/<channel>/<audience>/
    <event_type>.txt (and .subject.txt) for that tenant, in one language or in all. Django template text with
    the same context as the file (e.g. {{ what }}, {{ role_label }}, {{ url }})."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    audience = models.CharField(max_length=20, choices=[("approver", "Approvers"), ("requester", "Requester"),
                                                        ("customer", "Customer")])
    event_type = models.CharField(max_length=64, default="default",
                                  help_text="e.g. escalation.created; default: every event of this channel and audience.")
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES,
                                help_text="Blank: every language without a template of its own.")
    subject = models.CharField(max_length=300, blank=True, help_text="Blank: the standard subject.")
    body = models.TextField(help_text="The text (email: the HTML part is made from it).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "channel", "audience", "event_type", "language"]
        constraints = [models.UniqueConstraint(fields=["tenant", "channel", "audience", "event_type", "language"],
                                               name="message_template_unique")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.audience}/{self.event_type} [{self.language or '*'}]"
