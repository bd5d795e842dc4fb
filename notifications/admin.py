"""Operators: webhook endpoints, deliveries (dead letters + replay), provider health, messages, the outbox (read-only),
the tenants' notification defaults, and people's push subscriptions (listed without their endpoints or keys;
removable)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from simple_history.admin import SimpleHistoryAdmin

from trustguard.errors import DomainError

from .actors import OperatorActor
from .deliveries.replay import delivery_replay
from .deliveries.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
)
from .health import provider_health_rows
from .models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Message,
    OutboxEvent,
    PushSubscription,
    TenantNotificationDefaults,
    WebhookEndpoint,
)
from .preferences import ALWAYS_ON, notification_defaults_update
from .push.subscriptions import push_subscription_remove


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _https_by_default(field: models.Field[Any, Any], **kwargs: Any) -> forms.Field | None:
    """A URL typed without a scheme is https (Django 6's default). The admin also builds the model's own
    form field when it shows `url` read-only, so the form's Meta says it, not only the declared field."""
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class WebhookEndpointForm(forms.ModelForm[WebhookEndpoint]):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.CharField(required=False, help_text="Comma-separated, e.g. escalation.approved, escalation.*; "
                                                           "empty = all events.")

    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "url", "event_types", "description"]
        formfield_callback = _https_by_default

    def clean_event_types(self) -> list[str]:
        raw = self.cleaned_data.get("event_types") or ""
        return [part.strip() for part in raw.split(",") if part.strip()]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SimpleHistoryAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "tenant", "event_types", "is_active", "secret_prefix", "created_at"]
    list_filter = ["is_active", "tenant"]
    search_fields = ["url", "description"]
    actions = ["rotate_secret", "deactivate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["tenant", "url", "event_types", "description", "is_active", "secret_prefix", "created_at", "deleted_at"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_readonly_fields(request, obj) or ["tenant", "url", "event_types", "description"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: deliveries keep their history

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        if change:
            return
        try:
            endpoint, secret = webhook_endpoint_create(
                tenant_id=obj.tenant_id, actor=OperatorActor.staff(request.user), url=obj.url,
                event_types=form.cleaned_data.get("event_types") or [], description=obj.description)
        except DomainError as exc:
            raise forms.ValidationError(exc.detail) from exc
        obj.pk = endpoint.pk
        # The secret is shown this once; it is stored encrypted and never displayed again.
        messages.warning(request, f"Signing secret (copy it now, it will not be shown again): {secret}")

    @admin.action(description="Rotate the signing secret (the old one signs for 24 h more)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset.filter(is_active=True):
            _, secret = webhook_endpoint_rotate_secret(
                tenant_id=endpoint.tenant_id, actor=OperatorActor.staff(request.user), endpoint_id=endpoint.pk)
            messages.warning(request, f"New secret for {endpoint.url} (shown once): {secret}")

    @admin.action(description="Deactivate (stop delivering)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset.filter(is_active=True):
            webhook_endpoint_delete(tenant_id=endpoint.tenant_id,
                                             actor=OperatorActor.staff(request.user), endpoint_id=endpoint.pk)


class DeadLetterFilter(admin.SimpleListFilter):
    title = "dead letters"
    parameter_name = "dead"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "Dead letters only")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        return queryset.filter(status=DeliveryStatus.DEAD) if self.value() == "1" else queryset


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    change_list_template = "admin/notifications/delivery/change_list.html"
    list_display = ["id", "kind", "tenant", "event_type", "endpoint", "status", "attempts", "next_attempt_at",
                    "last_status_code", "short_error", "replays"]
    list_filter = [DeadLetterFilter, "status", "kind", "tenant"]
    list_select_related = ["event", "endpoint", "tenant"]
    search_fields = ["=event__event_id", "last_error"]
    actions = ["replay"]
    readonly_fields = ["tenant", "kind", "event", "endpoint", "message", "order_key", "aggregate_key", "event_seq",
                       "status", "attempts", "next_attempt_at", "last_attempt_at", "last_error", "last_status_code",
                       "delivered_at", "dead_at", "replays", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and request.user.has_perm("notifications.change_delivery")  # actions on the list only

    def get_urls(self) -> list[Any]:
        custom = [path("providers/", self.admin_site.admin_view(self.providers_view),
                       name="notifications_delivery_providers")]
        return custom + super().get_urls()

    def providers_view(self, request: HttpRequest) -> HttpResponse:
        """Provider health: per provider the last successful delivery, the breaker and an active check that sends
        nothing (kept for a minute; "Check now" runs it again)."""
        rows = provider_health_rows(fresh=request.method == "POST")
        context = {**self.admin_site.each_context(request), "title": "Provider health", "rows": rows,
                   "opts": self.model._meta, "checked_now": request.method == "POST"}
        return TemplateResponse(request, "admin/notifications/delivery/providers.html", context)

    @admin.display(description="event")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type if obj.event else (obj.message.purpose if obj.message else "")

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str:
        return obj.last_error[:80]

    @admin.action(description="Replay (dead letters: a fresh set of attempts, now)")
    def replay(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        done, refused = 0, []
        for delivery in queryset:
            try:
                delivery_replay(delivery_id=delivery.pk, actor=OperatorActor.staff(request.user))
                done += 1
            except DomainError as exc:
                refused.append(f"{delivery.pk}: {exc.detail}")
        messages.info(request, f"{done} deliveries queued again.")
        if refused:
            messages.warning(request, "Not replayed: " + "; ".join(refused[:20]))


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "channel", "purpose", "audience", "tenant", "user", "delivery_status", "sent_at",
                    "read_at", "provider", "provider_message_id", "cost"]
    list_filter = ["channel", "purpose", "audience", "tenant"]
    exclude = ["body"]
    readonly_fields = ["tenant", "channel", "purpose", "audience", "event", "user", "to_address", "subject",
                       "shown_body", "sensitive", "data", "created_at", "sent_at", "read_at", "provider",
                       "provider_message_id", "cost", "cost_currency"]

    @admin.display(description="body")
    def shown_body(self, obj: Message) -> str:
        return "(sensitive: not shown)" if obj.sensitive else obj.body

    @admin.display(description="delivery")
    def delivery_status(self, obj: Message) -> str:
        delivery = getattr(obj, "delivery", None)
        return delivery.status if delivery else ("delivered" if obj.sent_at else "")


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "tenant", "aggregate_type", "aggregate_id", "occurred_at", "relayed_at"]
    list_filter = ["type", "tenant"]
    search_fields = ["=event_id", "=aggregate_id"]
    readonly_fields = ["event_id", "tenant", "type", "version", "aggregate_type", "aggregate_id", "data", "occurred_at",
                       "relayed_at"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(ReadOnlyAdmin):
    """Which browsers get a person's pushes. The endpoint and keys are personal data: never shown here."""

    list_display = ["user", "device", "push_service", "created_at", "last_delivered_at"]
    list_filter = ["push_service"]
    list_select_related = ["user"]
    search_fields = ["user__username", "device"]
    readonly_fields = ["user", "device", "push_service", "created_at", "last_delivered_at"]
    actions = ["remove"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The list's action only (it removes through the audited service, on the platform's audit chain).
        return obj is None and request.user.has_perm("notifications.delete_pushsubscription")

    @admin.action(description="Remove (stop pushing to these browsers)")
    def remove(self, request: HttpRequest, queryset: QuerySet[PushSubscription]) -> None:
        removed = 0
        for subscription in queryset:
            try:
                push_subscription_remove(user_id=subscription.user_id, tenant_id=None,
                                         actor=OperatorActor.staff(request.user), subscription_id=subscription.pk)
                removed += 1
            except DomainError:
                pass  # removed meanwhile
        messages.info(request, f"{removed} browsers removed; they get no more pushes.")
class TenantNotificationDefaultsForm(forms.ModelForm[TenantNotificationDefaults]):
    channels_off = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(c.value, c.label) for c in Channel if c.value not in ALWAYS_ON],
        help_text="Off for people who have not chosen for themselves (the in-app inbox is always on).")

    class Meta:
        model = TenantNotificationDefaults
        fields = ["tenant", "quiet_hours_enabled", "quiet_start", "quiet_end", "critical_override",
                  "channels_off"]
        help_texts = {"quiet_start": "e.g. 22:00", "quiet_end": "e.g. 07:00 (the next morning when it is earlier)"}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("quiet_hours_enabled"):
            start, end = data.get("quiet_start"), data.get("quiet_end")
            if start is None or end is None:
                self.add_error("quiet_end" if start else "quiet_start", "Quiet hours need a start and an end.")
            elif start == end:
                self.add_error("quiet_end", "Quiet hours must end at another time than they start.")
        return data


@admin.register(TenantNotificationDefaults)
class TenantNotificationDefaultsAdmin(SimpleHistoryAdmin):
    """A tenant's notification defaults: quiet hours (deliveries wait until they end; critical ones may go through)
    and channels off, for people who have not chosen on their settings page. The hours are read in each person's
    time zone (their own, else the tenant's: the tenant's page)."""

    form = TenantNotificationDefaultsForm
    list_display = ["tenant", "quiet_hours_enabled", "quiet_start", "quiet_end", "critical_override",
                    "channels_off", "updated_at"]
    list_filter = ["quiet_hours_enabled"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["tenant"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: TenantNotificationDefaults, form: Any, change: bool) -> None:
        try:
            notification_defaults_update(defaults=obj, actor=OperatorActor.staff(request.user))
        except DomainError as exc:
            raise forms.ValidationError(exc.detail) from exc
