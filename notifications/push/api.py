"""API: the VAPID public key, and a person's push subscriptions (one per browser). Thin: subscriptions.py works."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trustguard.errors import NotFound, PermissionDenied
from trustguard.vapid import vapid_keys

from .subscriptions import push_subscription_add, push_subscription_remove, push_subscriptions_of


def _require_person(request: Request) -> Any:
    actor: Any = request.user  # an accounts.actors.Actor (BearerAuthentication)
    if getattr(actor, "user", None) is None:
        raise PermissionDenied("push subscriptions belong to a person: use a personal token", slug="person-required")
    return actor


def vapid_public_key() -> str:
    keys = vapid_keys()
    if keys is None:
        raise NotFound("Web Push is not set up on this server (TRUSTGUARD_VAPID_PRIVATE_KEY)", slug="push-not-configured")
    return keys.public_key


class VapidPublicKeyView(APIView):
    @extend_schema(operation_id="push_vapid_public_key", tags=["push"],
                   responses=inline_serializer("VapidPublicKey", {"public_key": serializers.CharField(
                       help_text="base64url (uncompressed P-256 point): PushManager.subscribe's applicationServerKey.")}),
                   description="The server's VAPID public key. 404 (`push-not-configured`) when Web Push is not set "
                               "up (TRUSTGUARD_VAPID_PRIVATE_KEY unset).")
    def get(self, request: Request) -> Response:
        return Response({"public_key": vapid_public_key()})


class PushKeysSerializer(serializers.Serializer[Any]):
    p256dh = serializers.CharField(help_text="The browser's P-256 public key, base64url.")
    auth = serializers.CharField(help_text="The browser's 16-byte auth secret, base64url.")


class PushSubscriptionInSerializer(serializers.Serializer[Any]):
    endpoint = serializers.CharField(help_text="The push service URL (https).")
    expirationTime = serializers.FloatField(required=False, allow_null=True, help_text="Ignored.")
    keys = PushKeysSerializer()


class PushSubscriptionSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(read_only=True)
    device = serializers.CharField(read_only=True, help_text="e.g. \"Chrome on Android\" (from the User-Agent).")
    push_service = serializers.CharField(read_only=True, help_text="The endpoint's origin.")
    created_at = serializers.DateTimeField(read_only=True)
    last_delivered_at = serializers.DateTimeField(read_only=True, allow_null=True)


def subscription_body(subscription: Any) -> dict[str, Any]:
    return {"id": str(subscription.pk), "device": subscription.device, "push_service": subscription.push_service,
            "created_at": subscription.created_at, "last_delivered_at": subscription.last_delivered_at}


class PushSubscriptionListView(APIView):
    @extend_schema(operation_id="me_push_subscriptions_list", tags=["push"],
                   responses=PushSubscriptionSerializer(many=True),
                   description="The browsers you enabled Web Push on (never their endpoints or keys).")
    def get(self, request: Request) -> Response:
        actor = _require_person(request)
        subscriptions = push_subscriptions_of(user_id=actor.user.pk)
        return Response(PushSubscriptionSerializer([subscription_body(s) for s in subscriptions], many=True).data)

    @extend_schema(
        operation_id="me_push_subscriptions_create", tags=["push"], request=PushSubscriptionInSerializer,
        responses={201: inline_serializer("PushSubscriptionCreated", {"id": serializers.CharField()})},
        examples=[OpenApiExample("a browser's PushSubscription", request_only=True, value={
            "endpoint": "https://fcm.googleapis.com/fcm/send/c1Kq...", "expirationTime": None,
            "keys": {"p256dh": "BNc...", "auth": "tBH..."}})],
        description="Send the browser's `PushSubscription.toJSON()`; the same browser again updates its row (same "
                    "`id`). Requests whose policy lists `push` in notify_channels then reach it. The endpoint must be "
                    "https on a public address; endpoint and keys are stored encrypted and never shown again.")
    def post(self, request: Request) -> Response:
        actor = _require_person(request)
        form = PushSubscriptionInSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        subscription = push_subscription_add(
            user_id=actor.user.pk, tenant_id=actor.tenant.pk, actor=actor,
            subscription={"endpoint": form.validated_data["endpoint"], "keys": dict(form.validated_data["keys"])},
            user_agent=request.headers.get("User-Agent", ""))
        return Response({"id": str(subscription.pk)}, status=status.HTTP_201_CREATED)


class PushSubscriptionDetailView(APIView):
    @extend_schema(operation_id="me_push_subscriptions_destroy", tags=["push"], responses={204: None},
                   description="Stop pushing to that browser. Someone else's subscription is a 404.")
    def delete(self, request: Request, subscription_id: str) -> Response:
        actor = _require_person(request)
        push_subscription_remove(user_id=actor.user.pk, tenant_id=actor.tenant.pk, actor=actor,
                                 subscription_id=subscription_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
