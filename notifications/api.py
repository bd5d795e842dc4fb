"""API: webhook endpoints (policy.manage) and the personal in-app inbox. Thin: services do the work."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trustguard.errors import PermissionDenied

from . import selectors
from .deliveries.webhooks import webhook_endpoint_create, webhook_endpoint_delete, webhook_endpoint_rotate_secret
from .inbox import channel_preference_set, notification_mark_read
from .models import Channel
from .preferences import PersonRules


def _require_policy_manager(request: Request) -> Any:
    actor: Any = request.user  # an accounts.actors.Actor (BearerAuthentication)
    if not actor.can("policy.manage"):
        raise PermissionDenied("managing webhooks needs policy.manage", slug="missing-capability")
    return actor


def _require_person(request: Request) -> Any:
    actor: Any = request.user
    if getattr(actor, "user", None) is None:
        raise PermissionDenied("the inbox belongs to a person: use a personal token", slug="person-required")
    return actor


# --- webhooks --------------------------------------------------------------------------------------

class WebhookEndpointSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(read_only=True)
    url = serializers.CharField(read_only=True)
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True,
                                        help_text="Event types delivered; empty means all.")
    description = serializers.CharField(read_only=True)
    secret_prefix = serializers.CharField(read_only=True, help_text="The start of the secret, to recognise it.")
    created_at = serializers.DateTimeField(read_only=True)


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Standard Webhooks secret (whsec_...). Shown only now.")


class WebhookCreateSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(max_length=500, help_text="https URL; loopback/private targets are refused.")
    event_types = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=50,
                                        help_text="e.g. [\"escalation.approved\", \"escalation.*\"]; omit for all.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)


def _endpoint_body(endpoint: Any, secret: str | None = None) -> dict[str, Any]:
    body = {"id": str(endpoint.pk), "url": endpoint.url, "event_types": endpoint.event_types,
            "description": endpoint.description, "secret_prefix": endpoint.secret_prefix,
            "created_at": endpoint.created_at}
    if secret is not None:
        body["secret"] = secret
    return body


class WebhookListView(APIView):
    @extend_schema(operation_id="webhooks_list", responses=WebhookEndpointSerializer(many=True), tags=["webhooks"])
    def get(self, request: Request) -> Response:
        actor = _require_policy_manager(request)
        endpoints = selectors.webhook_endpoints(tenant_id=actor.tenant.pk)
        return Response(WebhookEndpointSerializer([_endpoint_body(e) for e in endpoints], many=True).data)

    @extend_schema(operation_id="webhooks_create", request=WebhookCreateSerializer,
                   responses={201: WebhookEndpointWithSecretSerializer}, tags=["webhooks"],
                   description="Register a webhook endpoint. The response carries the signing secret, once.")
    def post(self, request: Request) -> Response:
        actor = _require_policy_manager(request)
        form = WebhookCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        endpoint, secret = webhook_endpoint_create(
            tenant_id=actor.tenant.pk, actor=actor, url=form.validated_data["url"],
            event_types=form.validated_data.get("event_types"), description=form.validated_data.get("description", ""))
        return Response(WebhookEndpointWithSecretSerializer(_endpoint_body(endpoint, secret)).data,
                        status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    @extend_schema(operation_id="webhooks_retrieve", responses=WebhookEndpointSerializer, tags=["webhooks"])
    def get(self, request: Request, endpoint_id: str) -> Response:
        actor = _require_policy_manager(request)
        endpoint = selectors.webhook_endpoint_get(tenant_id=actor.tenant.pk, endpoint_id=endpoint_id)
        return Response(WebhookEndpointSerializer(_endpoint_body(endpoint)).data)

    @extend_schema(operation_id="webhooks_destroy", responses={204: None}, tags=["webhooks"])
    def delete(self, request: Request, endpoint_id: str) -> Response:
        actor = _require_policy_manager(request)
        webhook_endpoint_delete(tenant_id=actor.tenant.pk, actor=actor, endpoint_id=endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(APIView):
    @extend_schema(operation_id="webhooks_rotate_secret", request=None,
                   responses=WebhookEndpointWithSecretSerializer, tags=["webhooks"],
                   description="A new secret, shown once. The old one keeps signing (second signature) for 24 h.")
    def post(self, request: Request, endpoint_id: str) -> Response:
        actor = _require_policy_manager(request)
        endpoint, secret = webhook_endpoint_rotate_secret(tenant_id=actor.tenant.pk, actor=actor,
                                                                   endpoint_id=endpoint_id)
        return Response(WebhookEndpointWithSecretSerializer(_endpoint_body(endpoint, secret)).data)


# --- inbox --------------------------------------------------------------------------------------------

class NotificationSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(read_only=True)
    purpose = serializers.CharField(read_only=True, help_text="The event type, e.g. escalation.created.")
    subject = serializers.CharField(read_only=True)
    body = serializers.CharField(read_only=True)
    links = serializers.DictField(read_only=True, help_text=(
        "What it is about, e.g. {\"escalation\": \"<id>\", \"url\": \"<the case page, absolute>\"}; "
        "\"action\": \"decide\" when it asks for a decision."))
    created_at = serializers.DateTimeField(read_only=True)
    read_at = serializers.DateTimeField(read_only=True, allow_null=True)
    done_at = serializers.DateTimeField(
        read_only=True, allow_null=True,
        help_text="An item that asked for a decision is done once its case closed (decided, cancelled, expired) "
                  "by anyone; a done item no longer counts as unread.")


def _notification_body(message: Any) -> dict[str, Any]:
    return {"id": str(message.pk), "purpose": message.purpose, "subject": message.subject,
            "body": message.readable_body(), "links": message.data, "created_at": message.created_at,
            "read_at": message.read_at, "done_at": message.done_at}


INBOX_LIMIT = 100


class InboxQuerySerializer(serializers.Serializer[Any]):
    unread = serializers.BooleanField(required=False, default=False,
                                      help_text="true (or 1): only unread items. Anything but a boolean is a 400.")


class NotificationListView(APIView):
    @extend_schema(
        operation_id="notifications_list", tags=["notifications"], parameters=[InboxQuerySerializer],
        description=f"The caller's in-app inbox in this tenant, newest first (at most {INBOX_LIMIT}). "
                    "`?unread=1` lists only unread items (neither read nor done); an unknown parameter is a 400, "
                    "not ignored (as on every operation).",
        responses=inline_serializer("Inbox", {"unread_count": serializers.IntegerField(),
                                              "results": NotificationSerializer(many=True)}))
    def get(self, request: Request) -> Response:
        actor = _require_person(request)
        query = InboxQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        unread_only = query.validated_data["unread"]
        items = selectors.inbox(user_id=actor.user.pk, tenant_id=actor.tenant.pk, unread_only=unread_only)[:INBOX_LIMIT]
        return Response({
            "unread_count": selectors.inbox_unread_count(user_id=actor.user.pk, tenant_id=actor.tenant.pk),
            "results": NotificationSerializer([_notification_body(m) for m in items], many=True).data,
        })


class NotificationReadView(APIView):
    @extend_schema(operation_id="notifications_read", request=None, responses=NotificationSerializer,
                   tags=["notifications"], description="Mark one notification read (idempotent).")
    def post(self, request: Request, message_id: str) -> Response:
        actor = _require_person(request)
        message = notification_mark_read(user_id=actor.user.pk, tenant_id=actor.tenant.pk,
                                                  message_id=message_id)
        return Response(NotificationSerializer(_notification_body(message)).data)


class PreferencesSerializer(serializers.Serializer[Any]):
    email = serializers.BooleanField(required=False)
    sms = serializers.BooleanField(required=False)
    in_app = serializers.BooleanField(required=False)
    push = serializers.BooleanField(required=False, help_text="Web Push to the browsers you enabled it on.")


class NotificationPreferencesView(APIView):
    def _current(self, user_id: int, tenant_id: int) -> dict[str, bool]:
        # The channels as the outbox reads them: the person's choice, else the tenant's default (preferences.py).
        rules = PersonRules.load([user_id], [tenant_id])
        return {channel: rules.channel_on(user_id, tenant_id, channel) for channel in Channel.values}

    @extend_schema(operation_id="notifications_preferences_retrieve", responses=PreferencesSerializer,
                   tags=["notifications"])
    def get(self, request: Request) -> Response:
        actor = _require_person(request)
        return Response(self._current(actor.user.pk, actor.tenant.pk))

    @extend_schema(operation_id="notifications_preferences_update", request=PreferencesSerializer,
                   responses=PreferencesSerializer, tags=["notifications"],
                   description="Turn channels on or off for yourself (the policy still decides which channels exist).")
    def put(self, request: Request) -> Response:
        actor = _require_person(request)
        form = PreferencesSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        for channel, enabled in form.validated_data.items():
            channel_preference_set(user_id=actor.user.pk, channel=channel, enabled=enabled)
        return Response(self._current(actor.user.pk, actor.tenant.pk))
